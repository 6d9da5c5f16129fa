// The bf16 kernels of kernels/linalign_bf16.cu, built for the SIMT emulator.
#include "linalign_bf16.cu"

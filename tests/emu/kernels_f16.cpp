// The f16 kernels of kernels/linalign_f16.cu, built for the SIMT emulator.
#include "linalign_f16.cu"

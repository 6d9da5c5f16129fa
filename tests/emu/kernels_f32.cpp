// The f32 kernels of kernels/linalign_f32.cu, built for the SIMT emulator.
#include "linalign_f32.cu"

// The host side of the CUDA backend (host/cuda_backend.cu), built against
// the SIMT emulator's runtime.
#include "cuda_backend.cu"

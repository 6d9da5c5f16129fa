// The SIMT emulator's stand-in for the CUDA runtime header (see
// tests/emu/simt.hpp): the runtime API of cuda_runtime_api.h plus what device
// code sees. Only the emulated targets have this directory on their include
// path.
#pragma once

#include "cuda_runtime_api.h"
#include "simt.hpp"

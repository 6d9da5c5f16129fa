// linalign story (story.cpp).
#pragma once

#include "cli/options.hpp"

namespace linalign_cli {

int run_story_command(const Args& a);

}  // namespace linalign_cli

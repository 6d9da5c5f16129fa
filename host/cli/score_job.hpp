// linalign score-job (score_job.cpp).
#pragma once

#include "cli/options.hpp"

namespace linalign_cli {

int run_score_job_command(const Args& a);

}  // namespace linalign_cli

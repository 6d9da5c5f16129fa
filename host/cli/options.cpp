#include "cli/options.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "cli/parse.hpp"

namespace linalign_cli {

namespace {
constexpr unsigned kRun = kCmdAlign | kCmdSample | kCmdScore;  // the library operations
constexpr unsigned kLib = kRun | kCmdDemo | kCmdScoreJob;      // everything that calls the library
}  // namespace

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"align", kCmdAlign, "--base Z.npy --principle Y.npy [--out L.npy] [options]",
       "aligned log-probabilities l* (float32, same shape as the inputs)"},
      {"sample", kCmdSample, "--base Z.npy --principle Y.npy [--out TOKENS.npy] [options]",
       "next token per row (int32 [B]), greedy or seeded Gumbel-max under top-p/top-k/min-p"},
      {"score", kCmdScore,
       "--base Z.npy --principle Y.npy --targets T.npy [--offsets O.npy] [--out S.npy] [options]",
       "log-probabilities of target tokens (float32 [B]) and per-sequence sums"},
      {"demo", kCmdDemo, "[--rows 8] [--vocab 32000] [options]",
       "random batch through align + sample + score: diagnostics, checks, throughput"},
      {"gen", kCmdGen, "--rows B --vocab V --out-base Z.npy --out-principle Y.npy [options]",
       "write random base/principle logits (and targets/offsets) as .npy test inputs"},
      {"info", kCmdInfo, "FILE.npy... [--values] [--bf16]",
       "print dtype, shape and value summary of .npy files"},
      {"story", kCmdStory,
       "[--principle \"The story is sad.\"] [--prompt \"Once upon a time\"] [options]",
       "a real model (stories15M) decoding with base, principle-only and Linear Alignment side "
       "by side"},
      {"score-job", kCmdScoreJob, "--manifest SHARDS.txt --out SCORES.tsv [options]",
       "score many sequences from .npy shards through the batcher; resumable (kill -9 safe)"},
  };
  return kCommands;
}

const CommandSpec* find_command(const std::string& name) {
  for (const auto& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

// The table (one row per flag and help text; long because the tool has many
// flags, not because it does many things).
const std::vector<FlagSpec>& flags() {
  static const std::vector<FlagSpec> kFlags = {
      // ---- inputs
      {"base", "FILE", kRun, "Inputs",
       "base logits z: .npy [B,V] or [V], float32 '<f4', float16 '<f2', or bfloat16 bits "
       "'<u2' with --bf16"},
      {"principle", "FILE", kRun, "Inputs", "principle logits y: same shape and dtype as --base"},
      {"targets", "FILE", kCmdScore, "Inputs",
       "target token per row: int32 [B] (int64 accepted), each in [0,V) or --ignore-index"},
      {"offsets", "FILE", kCmdScore, "Inputs",
       "ragged sequences: int64 [S+1] (int32 accepted) non-decreasing row offsets in [0,B]; "
       "sequence s is rows [o[s], o[s+1])"},
      {"bf16", nullptr, kRun | kCmdInfo | kCmdScoreJob, "Inputs",
       "read '<u2' (and ml_dtypes '<V2') arrays as bfloat16 bits; '<f2' is always float16"},
      // ---- outputs
      {"out", "FILE", kCmdAlign, "Outputs", "aligned log-probs l*: float32, shape of the inputs"},
      {"out-bf16", nullptr, kCmdAlign, "Outputs",
       "write l* as bfloat16 bits ('<u2', round to nearest even) instead of float32"},
      {"out", "FILE", kCmdSample, "Outputs", "tokens: int32 [B] (-1 for invalid rows)"},
      {"out", "FILE", kCmdScore, "Outputs",
       "aligned scores l*_t: float32 [B] (0 for ignored rows, NaN for invalid rows)"},
      {"out-logprob", "FILE", kCmdSample, "Outputs",
       "log-probability l* of each chosen token: float32 [B]"},
      {"out-base", "FILE", kCmdScore, "Outputs", "base scores l_t: float32 [B]"},
      {"out-principle", "FILE", kCmdScore, "Outputs", "principle scores lp_t: float32 [B]"},
      {"out-seq", "FILE", kCmdScore, "Outputs",
       "per-sequence sums of l*_t: float32 [S] (needs --offsets)", "offsets"},
      {"out-seq-base", "FILE", kCmdScore, "Outputs",
       "per-sequence sums of l_t: float32 [S] (needs --offsets)", "offsets"},
      {"out-seq-principle", "FILE", kCmdScore, "Outputs",
       "per-sequence sums of lp_t: float32 [S] (needs --offsets)", "offsets"},
      {"diagnostics", "FILE", kRun, "Outputs",
       "write the per-row JSON lines to FILE instead of stdout ('-' = stdout)"},
      {"diagnostics", "FILE", kCmdDemo, "Outputs",
       "also write the per-row JSON lines to FILE ('-' = stdout)"},
      {"no-diagnostics", nullptr, kRun, "Outputs", "do not write the per-row JSON lines", nullptr,
       "diagnostics"},
      // ---- alignment
      {"temperature", "T", kLib | kCmdStory, "Alignment",
       "temperature T > 0 (default 1); sample also takes 0 = greedy"},
      {"rule", "NAME", kLib, "Alignment",
       "step rule: fixed (eta = 1 + ratio), trust_region (eta = min(eta_max, sqrt(2 eps)/sigma)), "
       "exact_kl (KL(pi*|pi) = eps); default fixed"},
      {"ratio", "R", kLib | kCmdStory, "Alignment", "fixed rule: eta = 1 + R (default 2)"},
      {"epsilon", "EPS", kLib | kCmdStory, "Alignment",
       "trust_region / exact_kl: KL budget > 0 (default 0.1)"},
      {"eta-max", "E", kLib | kCmdStory, "Alignment",
       "trust_region / exact_kl: upper bound of eta (default 8)"},
      {"update", "NAME", kLib | kCmdStory, "Alignment",
       "update form: tilt (exponential tilt, default) or linear (first order in probability)"},
      // ---- token selection
      {"top-p", "P", kCmdSample | kCmdDemo | kCmdStory, "Token selection",
       "nucleus mass in (0,1] (default 1: off)"},
      {"top-k", "K", kCmdSample | kCmdDemo, "Token selection",
       "keep the K most probable (default 0: off)"},
      {"min-p", "P", kCmdSample | kCmdDemo, "Token selection",
       "keep tokens with prob >= P * max prob, P in [0,1] (default 0: off)"},
      {"nucleus-source", "NAME", kCmdSample | kCmdDemo, "Token selection",
       "distribution the masks are computed on: principle (default) or aligned"},
      {"min-tokens-to-keep", "N", kCmdSample | kCmdDemo, "Token selection",
       "the masks always keep the N most probable tokens (default 1)"},
      {"greedy", nullptr, kCmdSample | kCmdDemo, "Token selection",
       "argmax instead of Gumbel-max sampling"},
      {"seed", "S", kCmdSample, "Token selection",
       "Philox4x32-10 key, uint64 decimal or 0x hex (default 0); row r uses sub-stream r"},
      {"offset", "O", kCmdSample | kCmdDemo, "Token selection",
       "Philox offset: the decoding step counter, uint64 (default 0)"},
      // ---- scoring
      {"ignore-index", "I", kCmdScore | kCmdDemo | kCmdScoreJob, "Scoring",
       "target value that scores 0 and is left out of sums (default -100)"},
      // ---- runtime
      {"backend", "NAME", kLib | kCmdStory, "Runtime",
       "cpu, cuda or auto (default: CUDA when compiled in and a device is present, else CPU)"},
      {"threads", "N", kLib | kCmdStory, "Runtime",
       "CPU backend worker threads (default 0: all cores)"},
      {"device", "N", kLib | kCmdStory, "Runtime", "CUDA device ordinal (default 0)"},
      // ---- generator (gen, demo)
      {"rows", "B", kCmdGen | kCmdDemo, "Generator", "number of rows (gen: required; demo: 8)"},
      {"vocab", "V", kCmdGen | kCmdDemo, "Generator",
       "vocabulary size (gen: required; demo: 32000)"},
      {"seed", "S", kCmdGen, "Generator", "generator seed, uint64 (default 0)"},
      {"seed", "S", kCmdDemo, "Generator",
       "seed of the generated logits and of the Philox sampler (default 0)"},
      {"dtype", "NAME", kCmdGen | kCmdDemo, "Generator",
       "f32, f16 or bf16 (written as '<u2' bfloat16 bits); default f32"},
      {"scale", "X", kCmdGen | kCmdDemo, "Generator", "base logits are X * N(0,1) (default 3)"},
      {"shift", "X", kCmdGen | kCmdDemo, "Generator",
       "principle logits are base + X * N(0,1) (default 1)"},
      {"mask-frac", "F", kCmdGen | kCmdDemo, "Generator",
       "mask each token to -inf in the principle row with probability F (default 0)"},
      {"out-base", "FILE", kCmdGen, "Generator", "where to write the base logits (required)"},
      {"out-principle", "FILE", kCmdGen, "Generator",
       "where to write the principle logits (required)"},
      {"out-targets", "FILE", kCmdGen, "Generator", "also write random int32 [B] targets in [0,V)"},
      {"out-offsets", "FILE", kCmdGen, "Generator",
       "also write int64 [S+1] offsets splitting the rows into --sequences ragged sequences"},
      {"sequences", "S", kCmdGen, "Generator", "number of sequences for --out-offsets (default 2)",
       "out-offsets"},
      {"flat", nullptr, kCmdGen, "Generator", "write 1-D [V] arrays (needs --rows 1)"},
      {"nan-row", "R", kCmdGen, "Generator", "put a NaN into base row R (a row-level error)"},
      {"posinf-row", "R", kCmdGen, "Generator", "put a +inf into principle row R"},
      {"empty-row", "R", kCmdGen, "Generator", "make base row R all -inf (empty support)"},
      {"iters", "N", kCmdDemo, "Generator", "timed repetitions of each call (default 20)"},
      // ---- info
      {"values", nullptr, kCmdInfo, "Info", "also print every element, one per line"},
      // ---- story
      {"model-dir", "DIR", kCmdStory, "Story",
       "stories15M.bin and tokenizer.bin (default: what scripts/fetch_model.sh fetched, "
       "$LINALIGN_MODEL_DIR or ~/.cache/linalign/stories15M)"},
      {"prompt", "TEXT", kCmdStory, "Story", "the story's start (default \"Once upon a time\")"},
      {"principle", "TEXT", kCmdStory, "Story",
       "prepended to the prompt in the principle context (default \"The story is sad.\")"},
      {"steps", "N", kCmdStory, "Story", "tokens to decode per story (default 60)"},
      {"seed", "S", kCmdStory, "Story", "Philox seed of every mode's sampling (default 7)"},
      // ---- score-job
      {"manifest", "FILE", kCmdScoreJob, "Job",
       "one shard per line: BASE.npy PRINCIPLE.npy TARGETS.npy [OFFSETS.npy] (paths relative to "
       "the manifest); logits [N,V], targets [N], offsets [S+1] splitting the rows into "
       "sequences (default: one sequence per shard)"},
      {"out", "FILE", kCmdScoreJob, "Job",
       "per-sequence scores, one tab-separated line each: sequence, rows, scored, score, "
       "score_base, score_principle, status"},
      {"checkpoint", "FILE", kCmdScoreJob, "Job",
       "where the job records its progress (default OUT.ckpt); a rerun resumes from it"},
      {"checkpoint-every", "N", kCmdScoreJob, "Job", "sequences between checkpoints (default 256)"},
      {"max-rows", "N", kCmdScoreJob, "Job", "rows per batch (default 64)"},
      {"max-wait-us", "US", kCmdScoreJob, "Job",
       "how long a batch's first row waits for company (default 200)"},
  };
  return kFlags;
}

namespace {

// Word-wraps `text` to `width` columns, continuation lines indented by `indent`.
std::string wrap(const std::string& text, size_t indent, size_t width) {
  std::string out, word;
  size_t col = indent;
  auto flush_word = [&] {
    if (word.empty()) return;
    if (col > indent && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (col > indent) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    word.clear();
  };
  for (char c : text) {
    if (c == ' ') {
      flush_word();
    } else {
      word += c;
    }
  }
  flush_word();
  return out;
}

bool flag_exists(const std::string& name) {
  for (const auto& f : flags())
    if (name == f.name) return true;
  return false;
}

// Throws the UsageError for an argument the command's App did not take.
[[noreturn]] void explain_leftover(const std::string& arg, const CommandSpec& cmd,
                                   const std::string& see) {
  if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
    const std::string name = arg.substr(2, arg.find('=') - 2);
    if (flag_exists(name))
      throw UsageError("flag --" + name + " does not apply to '" + cmd.name + "'" + see);
    throw UsageError("unknown flag --" + name + see);
  }
  if (arg.size() > 1 && arg[0] == '-')
    throw UsageError("unknown option '" + arg + "' (flags start with --;" + see.substr(2));
  throw UsageError("unexpected argument '" + arg + "' (values follow their --flag;" +
                   see.substr(2));
}

}  // namespace

// One CLI11 App per call, built from the rows of flags() that belong to `cmd`
// (a name appears once per command). CLI11 tokenises ("--name value",
// "--name=value", "--"), refuses values given to boolean flags and missing
// values, and enforces the table's `needs` / `excludes`; it keeps what it does
// not recognise (allow_extras), and explain_leftover says what each is, in the
// table's words (a flag of another command is named as such). Help is the
// table's layout (command_usage), not CLI11's formatter.
Args Args::parse(const CommandSpec& cmd, int argc, char** argv, int first) {
  Args a;
  a.cmd_ = &cmd;
  const std::string see = std::string(" (see linalign ") + cmd.name + " --help)";
  CLI::App app{cmd.summary, std::string("linalign ") + cmd.name};
  app.set_help_flag();
  app.allow_extras();
  CLI::Option* help = app.add_flag("-h,--help");
  std::map<std::string, CLI::Option*> opts;
  for (const FlagSpec& f : flags()) {
    if (!(f.commands & cmd.bit) || opts.count(f.name)) continue;
    const std::string name = std::string("--") + f.name;
    CLI::Option* o = f.metavar ? app.add_option(name)->type_name(f.metavar)
                               : app.add_flag(name)->disable_flag_override();
    o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);  // "given twice" is checked below
    opts[f.name] = o;
  }
  for (const FlagSpec& f : flags()) {
    if (!(f.commands & cmd.bit)) continue;
    if (f.needs) opts.at(f.name)->needs(opts.at(f.needs));
    if (f.excludes) opts.at(f.name)->excludes(opts.at(f.excludes));
  }
  if (cmd.bit == kCmdInfo) app.add_option("files", a.positional_);

  std::vector<std::string> args(argv + first, argv + argc);
  std::reverse(args.begin(), args.end());  // CLI11 takes its arguments last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what() + see);
  }
  a.help_ = help->count() > 0;
  const std::vector<std::string> leftover = app.remaining();
  if (!leftover.empty()) explain_leftover(leftover.front(), cmd, see);
  for (const auto& [name, o] : opts) {
    if (o->count() == 0) continue;
    if (o->count() > 1) throw UsageError("flag --" + name + " is given twice");
    a.values_[name] = o->get_expected() == 0 ? std::string() : o->results().front();
  }
  return a;
}

std::string Args::str(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

std::string Args::required(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    throw UsageError("missing required flag --" + name + " (see linalign " + cmd_->name +
                     " --help)");
  if (it->second.empty()) throw UsageError("flag --" + name + ": empty value");
  return it->second;
}

float Args::f32(const std::string& name, float def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  float v;
  std::string why;
  if (!parse::to_f32(it->second, &v, &why))
    throw UsageError("flag --" + name + ": '" + it->second + "': " + why);
  return v;
}

int32_t Args::i32(const std::string& name, int32_t def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  int32_t v;
  std::string why;
  if (!parse::to_i32(it->second, &v, &why))
    throw UsageError("flag --" + name + ": '" + it->second + "': " + why);
  return v;
}

int64_t Args::i64(const std::string& name, int64_t def, int64_t lo, int64_t hi) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  int64_t v;
  std::string why;
  if (!parse::to_i64(it->second, lo, hi, &v, &why))
    throw UsageError("flag --" + name + ": '" + it->second + "': " + why);
  return v;
}

uint64_t Args::u64(const std::string& name, uint64_t def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  uint64_t v;
  std::string why;
  if (!parse::to_u64(it->second, &v, &why))
    throw UsageError("flag --" + name + ": '" + it->second + "': " + why);
  return v;
}

int Args::choice(const std::string& name, const std::vector<std::string>& choices, int def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  std::string v = it->second;
  std::replace(v.begin(), v.end(), '-', '_');
  for (size_t i = 0; i < choices.size(); ++i)
    if (v == choices[i]) return static_cast<int>(i);
  std::string list;
  for (size_t i = 0; i < choices.size(); ++i) list += (i ? ", " : "") + choices[i];
  throw UsageError("flag --" + name + ": '" + it->second + "' is not one of " + list);
}

std::string usage() {
  std::string s =
      "linalign: Linear Alignment (Gao et al., ICML 2024) at decode time.\n"
      "Aligns a model with a principle from two next-token logit rows per step: z from the\n"
      "plain context, y from the context with the principle in its system prompt.\n\n"
      "usage: linalign <command> [flags]    (linalign <command> --help for its flags)\n\n"
      "commands:\n";
  size_t width = 0;  // the longest name ("score-job") and two spaces
  for (const auto& c : commands()) width = std::max(width, std::string(c.name).size() + 2);
  for (const auto& c : commands()) {
    std::string name = c.name;
    name.resize(width, ' ');  // pads, never cuts
    s += "  " + name + c.summary + "\n";
  }
  s += "\n"
       "Arrays are NumPy .npy files (C order, little-endian). Per-row diagnostics go to stdout\n"
       "as JSON lines: {\"row\":r,\"eta\":..,\"mu\":..,\"sigma\":..,\"kl_base\":..,"
       "\"kl_principle\":..,\n"
       "\"entropy\":..,\"support\":..,\"status\":[..]} (non-finite numbers are null).\n"
       "Exit status: 0 success, 1 bad usage or input file, 2 library or CUDA error.\n\n"
       "example:\n"
       "  linalign gen --rows 4 --vocab 32000 --out-base z.npy --out-principle y.npy\n"
       "  linalign sample --base z.npy --principle y.npy --ratio 2 --top-p 0.8 --seed 7 "
       "--out t.npy\n"
       "  linalign demo\n";
  return s;
}

std::string command_usage(const CommandSpec& cmd) {
  std::string s =
      std::string("usage: linalign ") + cmd.name + " " + cmd.synopsis + "\n" + cmd.summary + "\n";
  std::string group;
  for (const auto& f : flags()) {
    if (!(f.commands & cmd.bit)) continue;
    if (group != f.group) {
      group = f.group;
      s += "\n" + group + ":\n";
    }
    std::string left =
        std::string("  --") + f.name + (f.metavar ? std::string(" ") + f.metavar : "");
    if (left.size() < 26) {
      left.resize(26, ' ');
    } else {
      left += "\n" + std::string(26, ' ');
    }
    s += left + wrap(f.help, 26, 100) + "\n";
  }
  s += "\n  -h, --help              this help\n";
  return s;
}

}  // namespace linalign_cli

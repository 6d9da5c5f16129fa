// Command-line flags of the linalign tool: one table, strict parsing.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace linalign_cli {

// A usage or input error: the message is printed, the exit code is 1.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The subcommands, as bits so a flag can belong to several.
enum Command : unsigned {
  kCmdAlign = 1u << 0,
  kCmdSample = 1u << 1,
  kCmdScore = 1u << 2,
  kCmdDemo = 1u << 3,
  kCmdGen = 1u << 4,
  kCmdInfo = 1u << 5,
  kCmdScoreJob = 1u << 6,
  kCmdStory = 1u << 7,
};

struct CommandSpec {
  const char* name;
  Command bit;
  const char* synopsis;  // after "linalign <name> "
  const char* summary;   // one line
};

const std::vector<CommandSpec>& commands();
const CommandSpec* find_command(const std::string& name);

struct FlagSpec {
  const char* name;     // without the leading "--"
  const char* metavar;  // nullptr for a boolean flag
  unsigned commands;    // Command bits
  const char* group;    // heading in --help
  const char* help;
  const char* needs = nullptr;     // another flag this one is meaningless without
  const char* excludes = nullptr;  // a flag this one contradicts
};

const std::vector<FlagSpec>& flags();

// Parsed arguments of one subcommand.
class Args {
 public:
  // Parses argv[first..argc) for `cmd` with CLI11 (an App built from the flag
  // table: "--name value" and "--name=value", "--" ends the flags, `needs` and
  // `excludes` enforced). Unknown flags, flags of another subcommand, missing
  // values, values given to boolean flags, repeated flags and stray positional
  // arguments (except for `info`) are UsageErrors naming the argument. Values
  // are kept as text: the typed getters below check them strictly (parse.hpp).
  static Args parse(const CommandSpec& cmd, int argc, char** argv, int first);

  const CommandSpec& command() const { return *cmd_; }
  bool help() const { return help_; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const std::vector<std::string>& positional() const { return positional_; }

  // Typed getters: the default when the flag is absent; a UsageError naming
  // the flag when its value does not parse.
  std::string str(const std::string& name, const std::string& def = "") const;
  std::string required(const std::string& name) const;  // error when absent
  float f32(const std::string& name, float def) const;
  int32_t i32(const std::string& name, int32_t def) const;
  int64_t i64(const std::string& name, int64_t def, int64_t lo, int64_t hi) const;
  uint64_t u64(const std::string& name, uint64_t def) const;
  // One of `choices` (the value's index); error listing the choices otherwise.
  int choice(const std::string& name, const std::vector<std::string>& choices, int def) const;

 private:
  const CommandSpec* cmd_ = nullptr;
  bool help_ = false;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// The general usage (`linalign --help`) and one subcommand's usage.
std::string usage();
std::string command_usage(const CommandSpec& cmd);

}  // namespace linalign_cli

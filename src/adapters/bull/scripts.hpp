#pragma once
// bull's own Lua scripts (bull 4.16.5, MIT, installed from npm in third_party/bull), embedded at
// build time by cmake/embed-bull-scripts.js with their includes resolved as bull's loader does and
// checked against the scripts a Node `bull` worker loads. Running them, rather than our own
// reading of them, keeps every step atomic and identical to a Node worker's.
#include <cstddef>
#include <span>
#include <string_view>

namespace registrar::adapters::bull {

struct Script {
  const char* name;  // bull's command name: "moveToActive", …
  int keys;          // its number of KEYS (the file name's `-<numkeys>`)
  const char* source;
};

// Defined in the generated source.
extern const char kBullVersion[];
extern const Script kScripts[];
extern const std::size_t kScriptCount;

inline std::span<const Script> all_scripts() { return {kScripts, kScriptCount}; }

// The script named `name`; throws std::out_of_range if bull has none (a build of another bull).
const Script& script(std::string_view name);

}  // namespace registrar::adapters::bull

#pragma once
#include <string_view>

namespace registrar::adapters::sodium {

// Compares a presented secret (the admin token) with the real one in constant time, whatever their
// lengths: both are hashed (BLAKE2b) first, and the hashes compared with sodium_memcmp.
bool same_secret(std::string_view presented, std::string_view secret);

}  // namespace registrar::adapters::sodium

#include "adapters/http/json_body.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/json/parse.hpp>

namespace registrar::adapters::http {

namespace json = boost::json;

namespace {
bool is_json_media_type(std::string_view content_type) {
  auto media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  return boost::beast::iequals(media, "application/json");
}
}  // namespace

std::variant<json::object, ProblemSpec> parse_json_object(const Request& req) {
  if (!is_json_media_type(req[beast_http::field::content_type]))
    return ProblemSpec{problems::unsupported_media_type, "The request body must be application/json"};
  json::parse_options opts;
  opts.max_depth = 16;  // our bodies are flat; deep nesting is only an attack
  // Boost.JSON rejects invalid UTF-8 by default (allow_invalid_utf8 = false).
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec, {}, opts);
  if (ec)
    return ProblemSpec{problems::malformed_json, "The request body is not valid JSON (UTF-8): " + ec.message()};
  if (!v.is_object())
    return ProblemSpec{problems::malformed_json, "The request body must be a JSON object"};
  return std::move(v.as_object());
}

std::optional<std::string> FieldReader::optional_string(std::string_view name) {
  auto it = obj_.find(name);
  if (it == obj_.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_string()) {
    errors_.push_back({std::string(name), "invalid_type", "Must be a string"});
    return std::nullopt;
  }
  return std::string(it->value().as_string());
}

std::string FieldReader::required_string(std::string_view name) {
  auto before = errors_.size();
  auto value = optional_string(name);
  if (!value && errors_.size() == before) errors_.push_back({std::string(name), "required", "This field is required"});
  return value.value_or(std::string{});
}

}  // namespace registrar::adapters::http

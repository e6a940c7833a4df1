// Build step: turns bull's Lua scripts (node_modules/bull/lib/commands/*.lua, from npm with a
// lockfile: third_party/bull) into a C++ source file, so that the Bull queue adapter runs exactly
// the scripts a Node `bull` worker runs.
//
// A script `name-<numkeys>.lua` may include others with `--- @include "includes/x"`. They are
// resolved the way bull's own loader does (lib/commands/script-loader.js in bull's repository,
// which generates the lib/scripts/*.js the npm package ships): each directive is replaced by the
// included file (path relative to the including file, ".lua" added when there is no extension),
// recursively; a file included twice in one script is emitted once, where it is first needed;
// finally empty lines are removed. Mapped paths (`~`, `<name>`) and globs are not used by bull's
// scripts and are refused here rather than half-supported.
//
// Then each result is checked against the script Node's bull really loads (lib/scripts/<name>.js
// of the same package): a difference fails the build, so an upgrade that changes the rules cannot
// go unnoticed.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const [bullDir, output] = process.argv.slice(2);
if (!bullDir || !output) throw new Error('usage: embed-bull-scripts.js <node_modules/bull> <out.cpp>');
const commandsDir = path.join(bullDir, 'lib', 'commands');

// The same expressions as bull's loader.
const IncludeRegex = /^[-]{2,3}[ \t]*@include[ \t]+(["'])(.+?)\1[; \t\n]*$/m;
const EmptyLineRegex = /^\s*[\r\n]/gm;

const tokenOf = (p) => '@@' + crypto.createHash('sha1').update(p).digest('hex');
const withLuaExt = (f) => (path.extname(f) && path.extname(f) !== '.' ? f : f + '.lua');

// Reads `file` and replaces its include directives by tokens, recursively; `cache` maps a path to
// its parsed include so that every include is read once.
function parse(filePath, cache, stack) {
  if (stack.includes(filePath)) throw new Error(`circular @include: ${[...stack, filePath].join(' -> ')}`);
  const file = { path: filePath, token: tokenOf(filePath), includes: [], content: fs.readFileSync(filePath, 'utf8') };
  stack.push(filePath);
  let res;
  while ((res = IncludeRegex.exec(file.content)) !== null) {
    const [match, , reference] = res;
    if (['~', '<'].includes(reference[0]) || /[*?[\]{}!]/.test(reference)) {
      throw new Error(`${filePath}: @include "${reference}": mapped paths and globs are not supported`);
    }
    const includePath = path.resolve(path.dirname(filePath), withLuaExt(reference));
    if (path.extname(includePath) !== '.lua' || !fs.existsSync(includePath)) {
      throw new Error(`${filePath}: include not found: "${reference}"`);
    }
    if (file.includes.some((x) => x.path === includePath)) {
      throw new Error(`${filePath}: "${reference}" already included`);
    }
    let child = cache.get(includePath);
    if (!child) {
      child = parse(includePath, cache, stack);
      cache.set(includePath, child);
    }
    file.includes.push(child);
    file.content = file.content.replace(match, child.token);
  }
  stack.pop();
  return file;
}

// Puts the includes in place of their tokens: the first occurrence gets the text, the others and
// any include already emitted in this script get nothing.
function interpolate(file, emitted) {
  let content = file.content;
  for (const child of file.includes) {
    const already = emitted.has(child.path);
    const fragment = interpolate(child, emitted);
    const replacement = already ? '' : fragment;
    if (replacement) content = content.replace(child.token, replacement);
    content = content.replace(new RegExp(child.token, 'g'), '');
    emitted.add(child.path);
  }
  return content;
}

if (!fs.existsSync(commandsDir)) throw new Error(`no bull scripts in ${commandsDir}`);
const files = fs.readdirSync(commandsDir).filter((f) => path.extname(f) === '.lua').sort();
if (files.length === 0) throw new Error(`no .lua files in ${commandsDir}`);

const cache = new Map();
const scripts = files.map((f) => {
  const longName = path.basename(f, '.lua');
  const m = /^([A-Za-z]+)-(\d+)$/.exec(longName);
  if (!m) throw new Error(`${f}: expected a name of the form name-<numkeys>.lua`);
  const lua = interpolate(parse(path.join(commandsDir, f), cache, []), new Set()).replace(EmptyLineRegex, '');
  const shipped = require(path.resolve(bullDir, 'lib', 'scripts', longName + '.js'));
  if (shipped.content !== lua || shipped.keys !== Number(m[2]) || shipped.name !== m[1]) {
    throw new Error(`${longName}: the resolved script differs from bull's own lib/scripts/${longName}.js ` +
      '(has bull changed its include rules?)');
  }
  return { name: m[1], keys: Number(m[2]), lua };
});

const version = JSON.parse(fs.readFileSync(path.join(bullDir, 'package.json'), 'utf8')).version;
const escape = (s) => Array.from(Buffer.from(s)).map((b) => b === 0x0a ? '\\n' :
  (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c && b !== 0x3f) ? String.fromCharCode(b) : '\\' + b.toString(8).padStart(3, '0')).join('');
let out = `// Generated by cmake/embed-bull-scripts.js from bull ${version} (MIT). Do not edit.\n`;
out += '#include "adapters/bull/scripts.hpp"\n\nnamespace registrar::adapters::bull {\n\n';
out += `extern const char kBullVersion[] = "${escape(version)}";\n`;
out += 'extern const Script kScripts[] = {\n';
for (const s of scripts) {
  out += `  {"${s.name}", ${s.keys},\n`;
  const lines = s.lua.split(/(?<=\n)/);
  for (const line of lines) out += `   "${escape(line)}"\n`;
  out += '  },\n';
}
out += '};\n';
out += `extern const std::size_t kScriptCount = ${scripts.length};\n\n}  // namespace registrar::adapters::bull\n`;
fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, out);

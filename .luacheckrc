-- luacheck configuration (make lint). Lua 5.4; busted globals in spec/; `arg` for scripts.
std = "lua54"
max_line_length = 180
-- self is implicit in methods and often unused by a base-class default
self = false
exclude_files = { "build/**", "build-asan/**", "runs/**" }

files["spec/**/*.lua"] = { std = "+busted" }
-- reference values written by the PyTorch scripts beside them
files["spec/fixtures/*.lua"] = { max_line_length = false }
files["bench/*.lua"] = { globals = { "arg" } }

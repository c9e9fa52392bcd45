--- The gen REPL (bin/gen with no arguments), in the spirit of Torch7's th: `gen` is preloaded,
-- each expression's value is printed (tensors Torch-style, tables readably), incomplete input
-- continues on a ">>" line, errors are shown and the session goes on. Line editing and history
-- come from lua-readline when stdin is a terminal.
local M = {}

local function is_tty()
  local ok = os.execute("test -t 0")
  return ok == true or ok == 0
end

--- A readable, bounded rendering of any value.
function M.show(v, depth, seen)
  depth, seen = depth or 0, seen or {}
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t ~= "table" then
    if t == "userdata" or t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
    return tostring(v)
  end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= 3 then return "{...}" end
  seen[v] = true
  local parts, n = {}, 0
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  local array = #v
  for _, k in ipairs(keys) do
    n = n + 1
    if n > 40 then parts[#parts + 1] = "..."; break end
    local key = ""
    if not (math.type(k) == "integer" and k >= 1 and k <= array) then
      key = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and (k .. " = ") or ("[" .. M.show(k, depth + 1, seen) .. "] = ")
    end
    local s = M.show(v[k], depth + 1, seen)
    if s:find("\n") then s = s:gsub("\n", "\n  ") end
    parts[#parts + 1] = key .. s
  end
  seen[v] = nil
  local inline = "{" .. table.concat(parts, ", ") .. "}"
  if #inline <= 80 and not inline:find("\n") then return inline end
  return "{\n  " .. table.concat(parts, ",\n  ") .. "\n}"
end

local function reader()
  if is_tty() then
    local ok, rl = pcall(require, "readline")
    if ok then
      -- readline.lua exits the process on an unknown option: only pass the two it documents
      if os.getenv("HOME") then rl.set_options { histfile = os.getenv("HOME") .. "/.gen_history", keeplines = 1000, auto_add = false } end
      return function(prompt) return rl.readline(prompt) end, rl
    end
    return function(prompt) io.write(prompt); io.flush(); return io.read("l") end
  end
  return function() return io.read("l") end
end

--- Compiles a chunk as an expression first ("return <line>"), then as a statement.
-- Returns the function, or nil and "incomplete" / an error message.
local function compile(src, env)
  local f = load("return " .. src, "=stdin", "t", env)
  if f then return f end
  local g, err = load(src, "=stdin", "t", env)
  if g then return g end
  if err:match("<eof>$") then return nil, "incomplete" end
  return nil, err
end

function M.run()
  local gen = require "gen"
  _G.gen = gen
  local read, rl = reader()
  local interactive = rl ~= nil or is_tty()
  if interactive then
    print(string.format("gen REPL (Lua 5.4, %d threads, %s kernels). `gen` is loaded; exit with Ctrl-D or os.exit().",
      gen.get_num_threads(), gen.config().isa))
  end
  local buffer
  while true do
    local line = read(buffer and ">> " or "gen> ")
    if line == nil then break end
    if not buffer and (line == "exit" or line == "quit") then break end
    buffer = buffer and (buffer .. "\n" .. line) or line
    local f, err = compile(buffer, _G)
    if f then
      if rl and buffer:match("%S") then rl.add_history(buffer) end
      buffer = nil
      local results = table.pack(xpcall(f, function(e)
        local tb = debug.traceback(tostring(e), 2)
        return (tb:gsub("\n[^\n]*in function 'xpcall'.*", "")) -- the REPL's own frames are noise
      end))
      if results[1] then
        for i = 2, results.n do print(M.show(results[i])) end
      else
        print("error: " .. tostring(results[2]))
      end
    elseif err ~= "incomplete" then
      print("syntax error: " .. err)
      buffer = nil
    end
  end
  if rl then pcall(rl.save_history) end
  if interactive then print() end
end

return M

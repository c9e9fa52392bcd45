--- The Lua side of gen's Jupyter kernel (lua/gen/app/jupyter_kernel.py starts it as a child process).
-- One persistent Lua state runs the notebook's cells with the REPL's rules; the Python side owns
-- the Jupyter wire protocol, so this file never sees ZeroMQ, signatures or message schemas.
--
-- Channels (set up by the parent, which names the two pipe descriptors in $GEN_KERNEL_FDS):
--   requests, framed as "<kind> <arg> <length>\n<payload>": execute N code,
--         complete CURSOR code, inspect CURSOR code, is_complete 0 code (CURSOR in bytes)
--   replies and rich output, one JSON object per line
--   fd 1, fd 2  the cell's own output (print, io.write, C libraries), streamed by the parent
-- Every reply is preceded by a flush of stdout and stderr, and an image or progress message waits
-- for the parent's "ack" line: the parent drains those pipes before acting on a reply, so text
-- and images stay in the order the cell produced them.
local M = {}

---------------------------------------------------------------- JSON (encoding only)

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode(v, out)
  local t = type(v)
  if t == "string" then
    -- bytes that are not valid UTF-8 would make the whole message undecodable: replace them
    if not utf8.len(v) then v = v:gsub("[\128-\255]", "?") end
    out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c)
      return escapes[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "number" then
    out[#out + 1] = (v == v and math.abs(v) ~= math.huge) and string.format("%.17g", v) or "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil and getmetatable(v) == M.array then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode(x, out)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, x in pairs(v) do
        if not first then out[#out + 1] = "," end
        first = false
        encode(tostring(k), out)
        out[#out + 1] = ":"
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "null"
  end
  return out
end

M.array = {} -- metatable marking an empty table as [] rather than {}

--- JSON text of a string, number, boolean or (nested) table.
function M.json(v) return table.concat(encode(v, {})) end

---------------------------------------------------------------- evaluation

local repl = require "gen.app.repl"

--- Compiles a cell, preferring to show a value: the whole cell as an expression, then the cell
-- with its last line as the returned expression (so `x = f()` newline `x` shows x, as notebooks
-- do), then the cell as statements. A cell ending in ";" is only run. Returns the function or nil and the first error message.
function M.compile(src, name, env)
  name = name or "=cell"
  -- a trailing ";" runs the cell for its effects only, as in IPython: `gen.ui.plot(...);`
  if src:match(";%s*$") then return load(src, name, "t", env) end
  local f = load("return " .. src, name, "t", env)
  if f then return f end
  local head, last = src:match("^(.*\n)%s*([^\n]-)%s*$")
  if head and last ~= "" and not last:match("^%-%-") then
    -- the prefix must stand on its own, or "return" would be spliced into a multi-line construct
    if load(head, name, "t", env) then
      f = load(head .. "return " .. last, name, "t", env)
      if f then return f end
    end
  end
  return load(src, name, "t", env)
end

--- "complete", "incomplete" or "invalid", as Jupyter's is_complete_request wants.
function M.is_complete(src)
  if M.compile(src) then return "complete" end
  local _, err = load(src, "=cell")
  if err and err:match("<eof>$") then return "incomplete" end
  return "invalid"
end

-- The traceback below the cell: the driver's own frames (xpcall and what called it) are noise.
local function traceback(e)
  local msg = tostring(e)
  if type(e) == "table" and getmetatable(e) and getmetatable(e).__tostring == nil then msg = repl.show(e) end
  local tb = debug.traceback(msg, 2)
  return (tb:gsub("\n[^\n]*in function 'xpcall'.*", ""))
end

---------------------------------------------------------------- completion

local keywords = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- Adds the string keys of t and of the tables its __index chain leads to.
local function collect(t, names, only_functions, depth)
  depth = depth or 0
  if depth > 8 then return end
  if type(t) == "table" then
    for k, v in pairs(t) do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and (not only_functions or type(v) == "function") then
        names[k] = true
      end
    end
  end
  local mt = getmetatable(t)
  if type(mt) ~= "table" then return end
  if type(mt.__index) == "table" and mt.__index ~= t then collect(mt.__index, names, only_functions, depth + 1) end
  -- modules that load on first use (gen.nn, gen.optim ...) are named before they exist
  if type(mt.lazy) == "table" and not only_functions then
    for k in pairs(mt.lazy) do names[k] = true end
  end
end

local tensor_fields = { "shape", "dtype", "grad", "requires_grad", "is_leaf", "grad_fn" }

local function members(v, sep)
  local names = {}
  local gen = package.loaded.gen
  if gen and gen.is_tensor(v) then
    collect(gen.Tensor, names, true)
    if sep == "." then for _, k in ipairs(tensor_fields) do names[k] = true end end
  else
    collect(v, names, sep == ":")
  end
  return names
end

--- Names that complete the identifier chain ending at byte `cursor` of src: globals, `a.b.`
-- fields (submodules included) and `x:` methods, from the live state. Returns the sorted names
-- and the byte offset where the completed word starts (0-based, Jupyter's cursor_start).
function M.complete(src, cursor)
  local before = src:sub(1, cursor)
  local chain = before:match("[%a_][%w_%.:]*$") or ""
  -- after a call or an index (`f(x):`, `t[1].`) the value is not known without running code
  local prev = before:sub(1, #before - #chain):sub(-1)
  if prev == "." or prev == ":" or prev == ")" or prev == "]" or (chain == "" and before:match("[%.:]$")) then
    return {}, cursor
  end
  local path, sep, word = chain:match("^(.*)([%.:])([%w_]*)$")
  local names = {}
  if not path then
    word = chain
    for k in pairs(_G) do if type(k) == "string" then names[k] = true end end
    for _, k in ipairs(keywords) do names[k] = true end
  elseif path:match("^[%a_][%w_]*[%w_%.]*$") and not path:match("%.%.") and not path:match("%.$") then
    local v = _G
    for part in path:gmatch("[^%.]+") do
      local ok, x = pcall(function() return v[part] end)
      if not ok or x == nil then return {}, cursor end
      v = x
    end
    names = members(v, sep)
  else
    return {}, cursor
  end
  local out = {}
  for k in pairs(names) do
    if k:sub(1, #word) == word and k:sub(1, 1) ~= "_" or (word:sub(1, 1) == "_" and k:sub(1, #word) == word) then
      out[#out + 1] = k
    end
  end
  table.sort(out)
  return out, cursor - #word
end

--- Text about the value named at `cursor` (Jupyter's inspect: Shift-Tab), or nil.
function M.inspect(src, cursor)
  local rest = src:sub(cursor + 1):match("^[%w_]*") or ""
  local chain = (src:sub(1, cursor):match("[%a_][%w_%.]*$") or "") .. rest
  if chain == "" then return nil end
  local v = _G
  for part in chain:gmatch("[^%.]+") do
    local ok, x = pcall(function() return v[part] end)
    if not ok or x == nil then return nil end
    v = x
  end
  return chain .. ": " .. type(v) .. "\n" .. repl.show(v)
end

---------------------------------------------------------------- rich output

local ids = setmetatable({}, { __mode = "k" })
local next_id = 0

local function progress_id(p)
  if not ids[p] then
    next_id = next_id + 1
    ids[p] = string.format("gen-progress-%d-%d", M.pid or 0, next_id)
  end
  return ids[p]
end

-- Small images are enlarged by whole factors (nearest neighbour) so that a 28x28 sample is not a
-- speck in the browser, which would otherwise blur it when scaling.
local function enlarged(px)
  local gen = package.loaded.gen
  local c, h, w = table.unpack(px.shape)
  local k = math.max(1, math.min(8, 512 // math.max(w, h)))
  if k == 1 then return px end
  local big = gen.upsample(px:float():view(1, c, h, w), { scale = k, mode = "nearest" })
  return big:view(c, h * k, w * k):byte()
end

--- Builds the display hooks gen.ui.display holds in the notebook (see lua/gen/app/ui.lua).
function M.display_hooks(send, tmpdir)
  local count = 0
  return {
    image = function(px)
      px = enlarged(px)
      count = count + 1
      local path = string.format("%s/%d.png", tmpdir, count)
      require("gen.image").save(path, px)
      send { type = "display", png = path, width = px.shape[3], height = px.shape[2] }
    end,
    progress = function(p, line, final)
      send { type = "progress", id = progress_id(p), text = line, final = final or false }
    end,
  }
end

---------------------------------------------------------------- the loop

local function read_request(input)
  local header = input:read("l")
  if not header then return nil end
  local kind, arg, len = header:match("^(%S+) (%-?%d+) (%d+)$")
  if not kind then error("gen.app.kernel: bad request header " .. string.format("%q", header)) end
  local payload = tonumber(len) > 0 and input:read(tonumber(len)) or ""
  return kind, tonumber(arg), payload
end

--- Runs the driver until its request pipe closes.
function M.run()
  local gen = require "gen"
  _G.gen = gen
  local core = gen.core
  local fds = os.getenv("GEN_KERNEL_FDS") or ""
  local in_fd, out_fd = fds:match("^(%d+) (%d+)$")
  if not in_fd then error("gen.app.kernel: run by lua/gen/app/jupyter_kernel.py, which sets GEN_KERNEL_FDS", 0) end
  local input = assert(io.open("/dev/fd/" .. in_fd, "rb"))
  local output = assert(io.open("/dev/fd/" .. out_fd, "wb"))
  io.stdout:setvbuf("line") -- print inside a training loop shows up while it runs
  local f = io.open("/proc/self/stat")
  M.pid = f and tonumber(f:read("l"):match("^(%d+)")) or 0
  if f then f:close() end
  local tmpdir = os.tmpname()
  os.remove(tmpdir)
  assert(os.execute("mkdir -p '" .. tmpdir .. "'"))

  local function send(msg)
    io.stdout:flush()
    io.stderr:flush()
    output:write(M.json(msg), "\n")
    output:flush()
    -- output shown while the cell runs waits for the parent to take it: text the cell prints
    -- next must not reach the parent's stdout pipe before the parent has placed this message
    if msg.type == "display" or msg.type == "progress" then input:read("l") end
  end

  gen.ui.display = M.display_hooks(send, tmpdir)
  core.interrupt_handler(true)
  send { type = "ready", version = _VERSION, threads = gen.get_num_threads() }

  while true do
    local kind, arg, code = read_request(input)
    if not kind then break end
    if kind == "execute" then
      local fn, err = M.compile(code, "=In[" .. arg .. "]", _G)
      if not fn then
        send { type = "error", ename = "SyntaxError", evalue = err, traceback = { "syntax error: " .. err } }
        send { type = "done", status = "error" }
      else
        core.interrupt_arm(true)
        local results = table.pack(xpcall(fn, traceback))
        core.interrupt_arm(false)
        if results[1] then
          local shown = {}
          for i = 2, results.n do shown[#shown + 1] = repl.show(results[i]) end
          if #shown > 0 then send { type = "result", text = table.concat(shown, "\n") } end
          send { type = "done", status = "ok" }
        else
          local tb = tostring(results[2])
          local lines = {}
          for line in (tb .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
          local msg = lines[1] or tb
          local interrupted = msg:match(": interrupted$") or msg == "interrupted"
          send { type = "error", ename = interrupted and "Interrupted" or "Error", evalue = msg, traceback = lines }
          send { type = "done", status = "error" }
        end
      end
    elseif kind == "complete" then
      local ok, matches, start = pcall(M.complete, code, arg)
      if not ok then matches, start = {}, arg end
      send { type = "complete", matches = setmetatable(matches, M.array), start = start, ["end"] = arg }
    elseif kind == "inspect" then
      local ok, text = pcall(M.inspect, code, arg)
      send { type = "inspect", text = ok and text or nil, found = ok and text ~= nil }
    elseif kind == "is_complete" then
      send { type = "is_complete", status = M.is_complete(code) }
    else
      send { type = "error", ename = "ProtocolError", evalue = "unknown request " .. kind,
        traceback = setmetatable({}, M.array) }
    end
  end
  os.execute("rm -rf '" .. tmpdir .. "'")
end

return M

-- bin/gen: the REPL driven through a pipe, and scripts with arguments.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function tmpfile(content)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(content)
  f:close()
  return name
end

describe("bin/gen", function()
  it("prints values, tensors, tables and errors, and keeps going", function()
    local input = tmpfile(table.concat({
      "1 + 1",
      "x = gen.ones(2, 3)",
      "x",
      "gen.matmul(gen.ones(2, 3), gen.ones(4, 2))",
      "function twice(a)",
      "  return a * 2",
      "end",
      "twice(21)",
      "{a = 1, b = {2, 3}}",
      "'after the error'",
    }, "\n") .. "\n")
    local out = run("bin/gen < " .. input)
    os.remove(input)
    assert.truthy(out:find("^2\n"), out)
    assert.truthy(out:find(" 1 1 1\n 1 1 1\n[gen.FloatTensor of size 2x3]", 1, true), out)
    assert.truthy(out:find("error: stdin:1: gen.matmul: shapes {2,3} and {4,2} do not align (3 ~= 4)", 1, true), out)
    assert.truthy(out:find("\n42\n", 1, true), out)
    assert.truthy(out:find("{a = 1, b = {2, 3}}", 1, true), out)
    assert.truthy(out:find('"after the error"', 1, true), out)
  end)

  it("reports syntax errors and stops at exit", function()
    local input = tmpfile("1 +* 2\nexit\nprint('not reached')\n")
    local out = run("bin/gen < " .. input)
    os.remove(input)
    assert.truthy(out:find("syntax error:", 1, true), out)
    assert.is_nil(out:find("not reached", 1, true))
  end)

  it("runs a script with arg set, with gen preloaded", function()
    local script = tmpfile("print(arg[0] ~= nil, arg[1], arg[2], #arg, (gen.ones(2) * 3):sum():item())\n")
    local out = run("bin/gen " .. script .. " a b")
    os.remove(script)
    assert.equal("true\ta\tb\t2\t6.0\n", out)
  end)

  it("exits non-zero when a script fails", function()
    local script = tmpfile("error('boom')\n")
    local ok = os.execute("bin/gen " .. script .. " > /dev/null 2>&1")
    os.remove(script)
    assert.is_not_true(ok)
  end)

  it("survives 1000 random bad calls of the gen functions and stays usable", function()
    -- a fixed grammar: every function of the gen table (except those that exit or block), called
    -- with up to three arguments drawn from values that are wrong for most of them
    local names = {}
    local skip = { interrupt_handler = true, interrupt_arm = true }
    local gen = require "gen"
    for k, v in pairs(gen) do
      if type(v) == "function" and not skip[k] then names[#names + 1] = k end
    end
    table.sort(names)
    local args = { "nil", "{}", "'x'", "''", "'/nonexistent/dir/f.safetensors'", "'float64'", "-1", "0", "2", "1e300",
      "0/0", "1/0", "math.maxinteger", "math.mininteger", "1 << 40", "true", "print", "{-1}", "{2, 0}", "{1 << 62, 4}",
      "gen.zeros(0)", "gen.ones(2, 3)", "gen.ones(2, 3):t()", "gen.tensor({1, 2}, 'int64')", "gen.zeros(2, 0, 3)",
      "gen.tensor(3)", "gen.ones(4, 1):expand(4, 5)", "gen.ones(1, 1, 2, 2)", "gen.zeros(3):byte()", "{stride = 0}",
      "{groups = -1, padding = math.maxinteger}", "{reduction = 'bogus'}", "{dtype = 'bogus'}", "gen.Generator(1)" }
    local rng = gen.Generator(2024)
    local picks = gen.randint(1, 1 << 30, { 1000, 5 }, { generator = rng }):totable()
    local lines = {}
    for i, p in ipairs(picks) do
      local call = {}
      for j = 1, p[1] % 4 do call[j] = args[p[1 + j] % #args + 1] end
      lines[#lines + 1] = string.format("gen.%s(%s)", names[p[5] % #names + 1], table.concat(call, ", "))
      lines[#lines + 1] = string.format("'call %d done'", i)
    end
    lines[#lines + 1] = "(gen.ones(2, 2) * 3):sum():item()"
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local input = tmpfile(table.concat(lines, "\n") .. "\n")
    local root = os.getenv("PWD") or "."
    local p = assert(io.popen(string.format("cd %s && GEN_MAX_MEMORY=512M %s/bin/gen < %s 2>&1", dir, root, input)))
    local out = p:read("a")
    local ok = p:close()
    os.remove(input)
    os.execute("rm -rf " .. dir)
    assert.is_true(ok, out:sub(-2000))
    local seen, errors = 0, select(2, out:gsub("\nerror: ", ""))
    for n in out:gmatch('"call (%d+) done"') do
      assert.equal(seen + 1, tonumber(n))
      seen = seen + 1
    end
    assert.equal(1000, seen, out:sub(-2000))
    assert.truthy(out:find("\n12.0\n$"), out:sub(-500))
    assert.is_true(errors > 500, "only " .. errors .. " of the calls raised") -- most are bad calls, and each one said so
  end)
end)

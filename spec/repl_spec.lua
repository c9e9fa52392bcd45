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
end)

-- The Jupyter kernel: the Lua driver's pieces in this process (JSON, cell compilation,
-- completion, display hooks, SIGINT as an error), then the real thing through Jupyter's own
-- machinery: jupyter_kernel_test and more protocol checks (spec/kernel/test_gen_kernel.py), and
-- the tour notebook executed headless by nbconvert.
local gen = require "gen"
local kernel = require "gen.app.kernel"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  return pid
end

describe("gen.app.kernel (the Lua driver)", function()
  it("encodes JSON", function()
    assert.equal('"a\\"b\\\\c\\n\\u001b"', kernel.json('a"b\\c\n\27'))
    assert.equal("[1,2.5,true]", kernel.json { 1, 2.5, true })
    assert.equal('{"k":"v"}', kernel.json { k = "v" })
    assert.equal("[]", kernel.json(setmetatable({}, kernel.array)))
    assert.equal("null", kernel.json(0 / 0))
    assert.equal('"\u{e9}"', kernel.json("\u{e9}")) -- UTF-8 passes as it is
    assert.equal('"a?"', kernel.json("a\255")) -- other bytes would make the message unreadable
  end)

  it("compiles cells the REPL way, showing the last line's value", function()
    local function run(src)
      local f = assert(kernel.compile(src, "=cell", _G))
      return table.pack(f())
    end
    assert.same({ n = 1, 2 }, run("1 + 1"))
    assert.same({ n = 1, 3 }, run("kernel_spec_a = 1\nkernel_spec_b = 2\nkernel_spec_a + kernel_spec_b"))
    assert.same({ n = 1, 7 }, run("local y = 7\ny"))
    assert.same({ n = 0 }, run("kernel_spec_c = 1"))
    assert.same({ n = 0 }, run("kernel_spec_d = 1 + 1;"))
    assert.same({ n = 0 }, run("for i = 1, 2 do\n  kernel_spec_e = i\nend"))
    assert.same({ n = 2, 1, 2 }, run("local t = {1,\n 2}\nt[1], t[2]"))
    assert.is_nil((kernel.compile("1 +* 2")))
    assert.equal("complete", kernel.is_complete("x = 1"))
    assert.equal("incomplete", kernel.is_complete("for i = 1, 3 do"))
    assert.equal("invalid", kernel.is_complete("1 +* 2"))
    -- luacheck: push ignore (the kernel defined these globals in the cells above)
    kernel_spec_a, kernel_spec_b, kernel_spec_c, kernel_spec_d, kernel_spec_e = nil, nil, nil, nil, nil
    -- luacheck: pop
  end)

  it("completes globals, fields, submodules not loaded yet, and methods", function()
    _G.gen = gen
    _G.kernel_spec_x = gen.ones(2)
    local function names(src)
      local list, start = kernel.complete(src, #src)
      local set = {}
      for _, n in ipairs(list) do set[n] = true end
      return set, start
    end
    local m, start = names("gen.nn.Lin")
    assert.is_true(m.Linear)
    assert.equal(#"gen.nn.", start)
    assert.is_true(names("gen.")["nn"])
    assert.is_true(names("gen.")["diffusion"])
    assert.is_true(names("kernel_spec_x:resh").reshape)
    assert.is_true(names("kernel_spec_x.sha").shape)
    assert.is_nil(names("kernel_spec_x:sha").shape) -- a field, not a method
    assert.is_true(names("wh")["while"])
    assert.same({}, (kernel.complete("no_such_global.x", 17)))
    assert.same({}, (kernel.complete("f(1):x", 6)))
    assert.truthy(kernel.inspect("gen.zeros", 5):find("^gen.zeros: function"))
    _G.kernel_spec_x = nil
  end)

  it("sends images, plots and progress bars to the display hooks, and nothing in a terminal", function()
    local shown, bars = {}, {}
    local hooks = { image = function(px) shown[#shown + 1] = px end,
      progress = function(p, line, final) bars[#bars + 1] = { p, line, final } end }
    gen.ui.display = hooks
    local ok, err = pcall(function()
      gen.image.show(gen.rand(2, 1, 4, 4))
      gen.ui.plot(nil, { series = { { y = { 1, 2 } } }, width = 160, height = 100 })
      assert.equal("string", type(gen.image.show(gen.rand(4, 4), { print = false }))) -- asked for the text
      local p = gen.ui.progress(3, { clock = function() return 0 end })
      p:update(1); p:update(3); p:close()
      local quiet = gen.ui.progress(3, { out = { write = function() end } }) -- an explicit destination
      quiet:update(1); quiet:close()
    end)
    gen.ui.display = nil
    assert.is_true(ok, err)
    assert.equal(2, #shown)
    assert.same({ 1, 8, 14 }, shown[1].shape) -- the grid of two 4x4 images, as uint8
    assert.equal("uint8", shown[1].dtype)
    assert.same({ 3, 100, 160 }, shown[2].shape)
    assert.equal(3, #bars) -- the first update, the last, and close; all for one bar
    assert.is_true(bars[1][1] == bars[3][1])
    assert.truthy(bars[2][2]:find("[##############################] 3/3", 1, true), bars[2][2])
    assert.is_true(bars[3][3])
  end)

  it("enlarges small images for the browser", function()
    local sent
    local hooks = kernel.display_hooks(function(msg) sent = msg end, "/tmp")
    hooks.image(gen.zeros({ 1, 28, 28 }, "uint8"))
    assert.equal(224, sent.width)
    local img = gen.image.load(sent.png, { uint8 = true })
    os.remove(sent.png)
    assert.same({ 1, 224, 224 }, img.shape)
  end)

  it("turns SIGINT into an error while armed, twice, and ignores it while disarmed", function()
    local core = gen.core
    local pid = own_pid()
    core.interrupt_handler(true)
    local results = {}
    for k = 1, 2 do
      os.execute(string.format("(sleep 0.3; kill -INT %s) &", pid))
      core.interrupt_arm(true)
      local w = gen.randn(16, 16)
      results[k] = table.pack(pcall(function() while true do w = (w * 0.5):tanh() end end))
      core.interrupt_arm(false)
    end
    os.execute(string.format("(sleep 0.1; kill -INT %s) &", pid))
    local t = gen.time()
    while gen.time() - t < 0.6 do end -- disarmed: the signal lands here and is dropped
    core.interrupt_handler(false)
    for k = 1, 2 do
      assert.is_false(results[k][1])
      assert.truthy(tostring(results[k][2]):find("interrupted$"), tostring(results[k][2]))
    end
    assert.has_error(function() core.interrupt_arm(true) end)
  end)
end)

describe("the gen Jupyter kernel", function()
  -- Jupyter is Python: the sanitizer preload of `make asan` is for the Lua process only, and the
  -- kernel's Lua child runs the regular build (the Makefile's asan target builds it first).
  local env = "env -u LD_PRELOAD -u GEN_BUILD PYDEVD_DISABLE_FILE_VALIDATION=1 "
  local tmp

  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. tmp))
  end)

  teardown(function()
    if tmp then os.execute("rm -rf " .. tmp) end
  end)

  local function require_jupyter()
    local ok = sh(env .. [[/usr/bin/python3 -c "import ipykernel, jupyter_kernel_test, nbconvert, nbformat" && command -v jupyter-nbconvert]])
    assert(ok, "Jupyter is missing (python3-ipykernel, python3-jupyter-kernel-test, jupyter-nbconvert): run `make deps`")
  end

  local function install()
    local ok, out = sh(env .. "bin/gen --install-kernel --prefix " .. tmp)
    assert(ok, out)
    assert.truthy(out:find("installed the gen (Lua 5.4) kernel in " .. tmp .. "/share/jupyter/kernels/gen", 1, true), out)
    return env .. "JUPYTER_PATH=" .. tmp .. "/share/jupyter JUPYTER_RUNTIME_DIR=" .. tmp .. "/runtime "
  end

  it("passes jupyter_kernel_test and the interrupt, crash, order and completion checks", function()
    require_jupyter()
    local jenv = install()
    local t = gen.time()
    local ok, out = sh(jenv .. "/usr/bin/python3 spec/kernel/test_gen_kernel.py")
    assert(ok, out)
    assert.truthy(out:find("\nOK"), out)
    io.write(string.format("\n  [kernel tests: %s in %.1f s]\n", out:match("Ran %d+ tests") or "?", gen.time() - t))
  end)

  it("runs examples/notebooks/tour.ipynb headless with images and no errors", function()
    require_jupyter()
    local jenv = install()
    local t = gen.time()
    local ok, out = sh(jenv .. "jupyter-nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 " ..
      "examples/notebooks/tour.ipynb --output-dir " .. tmp .. " --output tour")
    assert(ok, out)
    local took = gen.time() - t
    ok, out = sh(env .. "/usr/bin/python3 spec/kernel/check_notebook.py " .. tmp .. "/tour.ipynb 3")
    assert(ok, out)
    io.write(string.format("\n  [tour notebook: %s, executed in %.1f s]\n", out:match("[^\n]*"), took))
  end)
end)

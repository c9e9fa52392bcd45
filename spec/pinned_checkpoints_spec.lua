-- The DCGAN and rectified-flow examples after 20 steps at seed 7, on 1 and on 2 threads: the same
-- bits either way (GEMMs split into blocks fixed by their shape, sums in a fixed order), and the
-- digest pinned here, so that code that moves cannot change them. A change of numerics that is
-- meant must update these digests in the same commit (the last: float32 tanh through a vectorized
-- kernel, which moved the last bits of the DCGAN generator's output).
local digest = require "support.digest"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  return p:close(), out
end

local base = os.tmpname()
os.remove(base)

-- make asan builds with other flags (-O1 and the sanitizers), under which the flow example's float
-- results differ in the last bits (some sums are compiled to another order): it has its own digest
-- (asan_digest), recorded under make asan with the digest above. The DCGAN's is the
-- same in both builds.
local sanitized = os.getenv("GEN_BUILD") == "build-asan"

local pinned = {
  { script = "examples/gan/dcgan.lua", extra = "",
    digest = "fb80ef4585dad29e0cbc534773c70b4a00b7ad457668903c966ee5f04244e942" },
  { script = "examples/diffusion/rectified_flow.lua", extra = " --sample-steps 1",
    digest = "83fd8a99ebab484a7f833ffa90903620f3309c6b60d049c3d40740e3966727e5",
    asan_digest = "938ac67bf1c2f0abe6e7fadb9003cff8ee07a83bd6541c07910d5a49a12ccec9" },
}

describe("pinned example checkpoints", function()
  for i, case in ipairs(pinned) do
    it(case.script .. " after 20 steps is bitwise what it was, on 1 thread as on 2", function()
      local digests = {}
      for _, threads in ipairs { 2, 1 } do
        local out_dir = string.format("%s/%d-%d", base, i, threads)
        local ok, out = run("bin/gen " .. case.script .. " --steps 20 --batch 16 --seed 7 --threads " .. threads .. case.extra
          .. " --out " .. out_dir)
        assert.is_true(ok, out)
        digests[threads] = digest(out_dir .. "/checkpoint.safetensors")
      end
      assert.equal(sanitized and case.asan_digest or case.digest, digests[2])
      assert.equal(digests[2], digests[1])
    end)
  end
  teardown(function() os.execute("rm -rf " .. base) end)
end)

-- A PyTorch DCGAN's state dict (spec/fixtures/make_dcgan_fixture.py) loads into gen's DCGAN and
-- gives the same outputs.
local gen = require "gen"
local dcgan = require "gen.models.dcgan"
local fixtures = require "support.fixtures"

describe("DCGAN interop with PyTorch", function()
  it("loads the state dict as-is and reproduces the outputs", function()
    local t = gen.load("spec/fixtures/dcgan_torch.safetensors")
    local G, D = dcgan.Generator { width = 8 }, dcgan.Discriminator { width = 8 }
    local gsd, dsd = {}, {}
    for k, v in pairs(t) do
      if k:sub(1, 2) == "G." then gsd[k:sub(3)] = v elseif k:sub(1, 2) == "D." then dsd[k:sub(3)] = v end
    end
    G:load_state_dict(gsd)
    D:load_state_dict(dsd)
    G:eval(); D:eval()
    local fake = gen.no_grad(function() return G(t.z) end)
    assert.same({ 4, 1, 28, 28 }, fake.shape)
    fixtures.assert_close(fake, t.fake, 1e-5, "generator output", { measure = "abs" })
    local logits = gen.no_grad(function() return D(fake) end)
    fixtures.assert_close(logits, t.logits, 1e-4, "discriminator logits", { measure = "abs" })
    local missing, unexpected = G:load_state_dict(gsd)
    assert.same({}, missing)
    assert.same({}, unexpected)
  end)

  it("trains: one step lowers the discriminator loss on a fixed batch", function()
    gen.manual_seed(0)
    local D = dcgan.Discriminator { width = 8 }
    local opt = gen.optim.Adam(D, { lr = 2e-3, betas = { 0.5, 0.999 } })
    local x = gen.randn(8, 1, 28, 28)
    local y = gen.cat({ gen.ones(4, 1), gen.zeros(4, 1) })
    local function loss() return gen.bce_with_logits(D(x), y) end
    local first = loss()
    first:backward()
    opt:step()
    for _ = 1, 5 do
      opt:zero_grad()
      local l = loss()
      l:backward()
      opt:step()
    end
    assert.is_true(loss():item() < first:item())
  end)
end)

--- gen.data.image_folder(dir [, {channels = 1}]): a dataset from PNG files.
--   dir/*.png                  images without labels
--   dir/<class>/*.png          labels 1..K, classes sorted by folder name (ImageFolder's layout)
-- Every image is converted to `channels` (1 gray, 3 RGB, 4 RGBA) and they must share one size.
-- Images are uint8 {N, C, H, W}, like Fashion-MNIST's, so DataLoader scales them the same way.
local gen = require "gen"
local Dataset = require "gen.data.dataset"

local has_lfs, lfs = pcall(require, "lfs")

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Sorted entry names of a folder (no . and ..), and whether a path is a folder.
local list, is_dir
if has_lfs then
  list = function(dir)
    local out = {}
    local ok, iter, state = pcall(lfs.dir, dir)
    if not ok then return nil end
    for name in iter, state do
      if name ~= "." and name ~= ".." then out[#out + 1] = name end
    end
    table.sort(out)
    return out
  end
  is_dir = function(path) return lfs.attributes(path, "mode") == "directory" end
else
  is_dir = function(path)
    local ok = os.execute("test -d " .. shell_quote(path))
    return ok == true or ok == 0
  end
  list = function(dir)
    if not is_dir(dir) then return nil end
    local p = io.popen("ls -1A " .. shell_quote(dir) .. " 2>/dev/null")
    local out = {}
    for line in p:lines() do out[#out + 1] = line end
    p:close()
    table.sort(out)
    return out
  end
end

local function is_png(name) return name:lower():match("%.png$") ~= nil end

return function(dir, opts)
  opts = opts or {}
  if type(dir) ~= "string" then error("gen.data.image_folder: expected a folder path, got " .. type(dir), 2) end
  local channels = opts.channels or 1
  local names = list(dir)
  if not names then error("gen.data.image_folder: " .. dir .. " is not a readable folder", 2) end
  local files, labels, classes = {}, {}, {}
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name
    if is_dir(path) then
      local inner = {}
      for _, f in ipairs(list(path) or {}) do
        if is_png(f) then inner[#inner + 1] = path .. "/" .. f end
      end
      if #inner > 0 then
        classes[#classes + 1] = name
        for _, f in ipairs(inner) do files[#files + 1] = f; labels[#labels + 1] = #classes end
      end
    elseif is_png(name) then
      files[#files + 1] = path
    end
  end
  if #files == 0 then error("gen.data.image_folder: no PNG files in " .. dir .. " or its sub-folders", 2) end
  if #classes > 0 and #labels ~= #files then
    error("gen.data.image_folder: " .. dir .. " mixes PNG files with class sub-folders; use one layout", 2)
  end
  local image = require "gen.image"
  local imgs = {}
  for i, f in ipairs(files) do
    local ok, img = pcall(image.load, f, { channels = channels, uint8 = true })
    if not ok then error("gen.data.image_folder: " .. tostring(img), 2) end
    if i > 1 and (img:size(2) ~= imgs[1]:size(2) or img:size(3) ~= imgs[1]:size(3)) then
      error(string.format("gen.data.image_folder: %s is %dx%d but %s is %dx%d (all images must share one size)", f,
        img:size(2), img:size(3), files[1], imgs[1]:size(2), imgs[1]:size(3)), 2)
    end
    imgs[i] = img
  end
  return Dataset.new {
    images = gen.stack(imgs),
    labels = #classes > 0 and gen.tensor(labels, "int64") or nil,
    classes = #classes > 0 and classes or nil,
    files = files,
    name = dir,
  }
end

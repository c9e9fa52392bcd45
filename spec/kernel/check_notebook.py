"""Checks a notebook executed by nbconvert: prints one line per finding and exits non-zero when
a cell produced an error, when there are fewer than MIN_IMAGES PNG outputs, or when a progress
bar took more than one output.

    /usr/bin/python3 spec/kernel/check_notebook.py EXECUTED.ipynb MIN_IMAGES
"""

import json
import sys


def main(path, min_images):
    with open(path) as f:
        nb = json.load(f)
    images, errors, problems = 0, [], []
    for i, cell in enumerate(nb["cells"], 1):
        if cell["cell_type"] != "code":
            continue
        bars = 0
        for out in cell.get("outputs", []):
            kind = out["output_type"]
            if kind == "error":
                errors.append("cell %d: %s: %s" % (i, out.get("ename"), out.get("evalue")))
            data = out.get("data", {})
            if "image/png" in data:
                images += 1
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if "[#" in text or ".]" in text:
                bars += 1
            stream = out.get("text", "")
            stream = "".join(stream) if isinstance(stream, list) else stream
            if "elapsed" in stream and "eta" in stream:
                problems.append("cell %d: a progress line went to a stream" % i)
        if bars > 1:
            problems.append("cell %d: a progress bar took %d outputs" % (i, bars))
    print("images: %d, errors: %d" % (images, len(errors)))
    for line in errors + problems:
        print(line)
    if images < min_images:
        print("expected at least %d image/png outputs" % min_images)
    return 1 if errors or problems or images < min_images else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))

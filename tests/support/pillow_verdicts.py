"""Pillow's verdict on every file of an image corpus, as JSON lines on stdout: the format Pillow names, whether it
decodes the whole image (without LOAD_TRUNCATED_IMAGES), and the size. thumbq's corpus test (tests/corpus.rs)
compares thumbq's answers with these: the mainstream imaging library is the reference for what "decodable" means.
"""
import json
import os
import resource
import signal
import sys
import warnings

from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # a verdict, not a server: thumbq applies its own limit
warnings.simplefilter("ignore")



def verdict(path, root):
    """Pillow's verdict on one file."""
    verdict = {"path": os.path.relpath(path, root), "format": None, "decodes": False}
    try:
        with Image.open(path) as image:
            verdict["format"] = image.format
            verdict["width"], verdict["height"] = image.size
            image.load()
            verdict["decodes"] = True
    except Exception as error:  # any failure is "does not decode", with its reason kept for the test's message
        verdict["error"] = f"{type(error).__name__}: {error}"[:200]
    return verdict


def bounded(path, root):
    """The verdict from a child process with 2 GiB of address space and 20 s: some files in the corpus are
    decompression bombs that make Pillow itself allocate tens of GB."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        signal.alarm(20)
        os.write(write, json.dumps(verdict(path, root)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    if not answer:
        return {"path": os.path.relpath(path, root), "format": None, "decodes": False, "error": "over 2 GiB or 20 s"}
    return json.loads(answer)


root = sys.argv[1]
for folder, _, files in sorted(os.walk(root)):
    for name in sorted(files):
        print(json.dumps(bounded(os.path.join(folder, name), root)), flush=True)

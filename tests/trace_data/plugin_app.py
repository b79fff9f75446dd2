# ctypes find_library (spawns ldconfig/gcc) and a plugin found by listing a directory.
import ctypes, ctypes.util, importlib, os, sys
base = os.path.dirname(os.path.abspath(__file__))
name = ctypes.util.find_library("m")
ctypes.CDLL(name)
sys.path.insert(0, base)
wanted = open(os.path.join(base, "app.conf")).read().strip()
plugins = [f[:-3] for f in os.listdir(os.path.join(base, "plugins")) if f.endswith(".py")]
assert wanted in plugins
mod = importlib.import_module("plugins." + wanted)
print(mod.answer(), name)

"""The demo city of Zhushan county and the benchmark city: class dictionaries, generator and loader."""

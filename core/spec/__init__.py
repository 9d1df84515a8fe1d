"""Plain data, no I/O: the settings table, RunConfig and its run id, presets, the layer plan,
validate(config, data shape), and what a run reports and leaves behind."""

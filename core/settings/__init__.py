"""Settings: config.toml and the environment read into one typed `Settings` (`config`), the
UI preferences the console saves (`uistate`), the simulator's public demo credentials (`demo`)."""

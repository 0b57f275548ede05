"""xray-lightning: chest X-ray pneumonia diagnosis with Lightning + Hydra."""

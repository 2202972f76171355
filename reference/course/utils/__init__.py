"""Stand-ins for the course's `utils` package: `other_utils`, `ddpm_utils`, `UNet_utils`.

Submodules are not imported here, so `from utils import other_utils` loads only what it names.
"""

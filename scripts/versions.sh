# The one place the libtorch versions are pinned. tch =0.24.0 (Cargo.toml) expects PyTorch 2.11.0;
# the CUDA runtime/CUPTI versions are the ones torch 2.11.0's wheel pins (cuda-toolkit==13.0.2).
TORCH_VERSION=2.11.0
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85

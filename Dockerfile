# skywork-rl on CUDA GPUs: the project with its `vllm` and `deepspeed` extras; entrypoint `skywork-rl`.
#   docker build -t skywork-rl .
#   docker run --gpus all --ipc=host -v "$PWD/outputs:/workspace/skywork-rl/outputs" \
#     -v "$HOME/.cache/huggingface:/root/.cache/huggingface" skywork-rl run recipes/skywork-r1v3-8b/pipeline.yaml
#
# One GPU stack, the one README's "GPU install" describes (pyproject.toml pins it): vllm 0.30.0 and the
# torch 2.13.0 / torchvision 0.28.0 it pins. PyPI's torch 2.13.0 Linux wheel is a CUDA 13.0 build
# (it requires cuda-toolkit 13.0.3), so the base image is CUDA 13.0: DeepSpeed compiles its ops only
# when nvcc's major.minor equals torch.version.cuda, and flash-attn's build needs the same major.
# tests/test_gpu_install.py resolves `.[vllm]` and checks this tag against the resolved torch.
# A devel (not runtime) image: DeepSpeed JIT-compiles its ops (CPU Adam for offload, fused Adam) on
# first use, and flash-attn builds from source.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04
FROM ${CUDA_IMAGE}

# flash-attn (optional: recipes default to PyTorch SDPA) is compiled against the installed torch:
# --build-arg INSTALL_FLASH_ATTN=1 for recipes that set attn_implementation: flash_attention_2.
# It takes long; FLASH_ATTN_CUDA_ARCHS limits it to A100 (80) and H100/H200 (90) unless widened.
ARG INSTALL_FLASH_ATTN=0
ARG FLASH_ATTN_VERSION=2.8.3.post2
ARG FLASH_ATTN_CUDA_ARCHS="80;90"
ARG MAX_JOBS=8
# DL3064 flags TOKENIZERS_PARALLELISM for its name; it holds no secret.
# hadolint ignore=DL3064
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CUDA_HOME=/usr/local/cuda \
    TOKENIZERS_PARALLELISM=false \
    VLLM_WORKER_MULTIPROC_METHOD=spawn

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Toolchain for DeepSpeed's JIT ops (ninja, libaio for its async I/O) and git for hub checkouts.
# Versions come from the pinned base image's Ubuntu release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev build-essential ninja-build libaio-dev git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir "pip>=24.0" "setuptools>=68" "wheel>=0.42"

WORKDIR /workspace/skywork-rl

# Dependencies first, from pyproject.toml alone with empty packages, so editing the code does not
# reinstall vLLM/DeepSpeed/torch: only the last layers rebuild. The build fails here if the image's
# CUDA and torch's disagree (what DeepSpeed's op builder would refuse at run time).
COPY pyproject.toml README.md ./
# DL3013: the versions are the project's own pins in pyproject.toml.
# hadolint ignore=DL3013
RUN mkdir -p skywork_rl data_prep eval \
    && touch skywork_rl/__init__.py data_prep/__init__.py eval/__init__.py \
    && pip install --no-cache-dir ".[vllm,deepspeed]" \
    && nvcc_cuda="$(nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')" \
    && torch_cuda="$(python -c 'import torch; print(torch.version.cuda)')" \
    && echo "nvcc CUDA ${nvcc_cuda}, torch built with CUDA ${torch_cuda}" \
    && [ "${nvcc_cuda}" = "${torch_cuda}" ]

RUN if [ "$INSTALL_FLASH_ATTN" = "1" ]; then \
        FLASH_ATTENTION_FORCE_BUILD=TRUE FLASH_ATTN_CUDA_ARCHS="$FLASH_ATTN_CUDA_ARCHS" MAX_JOBS="$MAX_JOBS" \
            pip install --no-cache-dir --no-build-isolation --no-deps "flash-attn==${FLASH_ATTN_VERSION}" \
        && python -c "import flash_attn, flash_attn_2_cuda; print('flash-attn', flash_attn.__version__)"; \
    fi

COPY . .
RUN pip install --no-cache-dir --no-deps --force-reinstall . \
    && skywork-rl stages

ENTRYPOINT ["skywork-rl"]
CMD ["--help"]

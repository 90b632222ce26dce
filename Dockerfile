# VASCO worker image: SExtractor, PSFEx and the pinned Python environment.
# Build:  docker build -t vasco .
# Run:    docker run --rm -v "$PWD/runs:/app/runs" vasco \
#             python flows/survey.py --sky synthetic --tiles 4 --seed 1 --out runs/demo
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        source-extractor psfex wcstools \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md ./
COPY vasco ./vasco
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
COPY prefect.yaml ./
RUN python -m pip install --no-cache-dir --no-deps -e .

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PYTHONUNBUFFERED=1
CMD ["python", "flows/survey.py", "--help"]

# The cxone-processor image: every subcommand, the simulator included.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY processor ./processor
COPY schemas ./schemas
RUN pip install --no-cache-dir .

USER nobody
# The simulator's API (`simulate --port 8080`) and the processor's /metrics
# and /health/* (PROCESSOR_HTTP_PORT).
EXPOSE 8080 9464
ENTRYPOINT ["cxone-processor"]

# The cxone-processor image: every subcommand, the simulator included.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY processor ./processor
COPY schemas ./schemas
RUN pip install --no-cache-dir .

USER nobody
ENTRYPOINT ["cxone-processor"]

# statemachine-engine in a container. Build from the repository root:
#   docker build -t statemachine-engine .
# The image holds a starter project in /app (`statemachine init`); mount or COPY your own
# project over it. Runs `statemachine up system.yaml --no-ui` as an unprivileged user, with
# the SQLite database in the /app/data volume. See docs/production.md.

# The UI's Mermaid build comes from npm, as `make ui-assets` fetches it.
FROM node:22-bookworm-slim AS ui
WORKDIR /ui
COPY src/statemachine_engine/monitoring/frontend/package.json src/statemachine_engine/monitoring/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE ./
COPY src ./src
COPY examples ./examples
COPY --from=ui /ui/node_modules/mermaid/dist/mermaid.min.js ./src/statemachine_engine/monitoring/static/vendor/mermaid.min.js
RUN pip install --no-cache-dir "build>=1.2" \
    && python -m build --wheel --outdir /dist .

FROM python:3.12-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    STATEMACHINE_RUNTIME_DIR=/tmp/statemachine
COPY --from=build /dist /dist
RUN pip install --no-cache-dir "$(ls /dist/statemachine_engine-*.whl)[postgres]" \
    && rm -rf /dist \
    && useradd --create-home --uid 10001 statemachine \
    && install -d -o statemachine -g statemachine /app
USER statemachine
WORKDIR /app
RUN statemachine init . && mkdir data
VOLUME ["/app/data"]
EXPOSE 3001
STOPSIGNAL SIGTERM
ENTRYPOINT ["statemachine"]
CMD ["up", "system.yaml", "--no-ui"]

# The native fast path (native/, Rust) is built into a wheel in its own stage, so the
# service image carries neither cargo nor a compiler. Every Python package comes from
# requirements.lock, checked against its hashes; Rust is native/rust-toolchain.toml's.
FROM python:3.11-slim AS native
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
ENV PATH=/root/.cargo/bin:$PATH
COPY requirements.lock /requirements.lock
COPY native /native
RUN cd /native && rustup toolchain install \
 && pip install --no-cache-dir --require-hashes -r /requirements.lock \
 && pip wheel --no-cache-dir --no-deps --no-build-isolation /native -w /wheels

FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY --from=native /wheels /wheels
COPY pyproject.toml README.md ./
COPY consumer ./consumer
COPY producer ./producer
COPY schemas ./schemas
RUN pip install --no-cache-dir --no-deps --no-build-isolation /wheels/*.whl . \
 && rm -rf /wheels && useradd --system ivmtr
USER ivmtr
# The image always has the native fast path: refuse to start on the slow path by mistake.
ENV IVMTR_HOST=0.0.0.0 IVMTR_LOG_FORMAT=json IVMTR_FAST_PATH=require
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"
CMD ["ivmtr-stream", "serve"]

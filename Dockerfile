FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY consumer ./consumer
COPY producer ./producer
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --system ivmtr
USER ivmtr
ENV IVMTR_HOST=0.0.0.0 IVMTR_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"
CMD ["ivmtr-stream", "serve"]

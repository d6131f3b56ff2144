"""Locust users for bench/api_bench.py. Settings arrive in the environment (BENCH_*): the API key, the upload and
job to read, and the wait between requests of one user (constant throughput per user = a fixed total rate)."""

from __future__ import annotations

import os

from locust import FastHttpUser, constant_throughput, task

KEY = os.environ["BENCH_API_KEY"]
UPLOAD = os.environ["BENCH_UPLOAD_ID"]
JOB = os.environ["BENCH_JOB_ID"]
PER_USER = float(os.environ.get("BENCH_PER_USER_RPS", "10"))
SCENARIO = os.environ["BENCH_SCENARIO"]


class ApiClient(FastHttpUser):
    wait_time = constant_throughput(PER_USER)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {KEY}"}

    @task
    def request(self) -> None:
        if SCENARIO == "get-job":
            self.client.get(f"/v1/jobs/{JOB}", headers=self.headers, name="GET /v1/jobs/{id}")
        else:
            body = {"upload_id": UPLOAD, "target_languages": ["es"], "source_language": "en"}
            self.client.post("/v1/jobs", json=body, headers=self.headers, name="POST /v1/jobs")

#!/usr/bin/env python3
# The Python anchor for bench/generate.ts: what Python synthetic-data pipelines do (asyncio + aiohttp +
# a semaphore of C), against the same OpenAI-compatible server; prints one JSON line with req/s and CPU.
import argparse
import asyncio
import json
import sys
import tempfile
import time

try:
    import aiohttp
except ImportError:
    print(json.dumps({"skipped": "install python3-aiohttp"}))
    sys.exit(0)


def load_texts(path, limit):
    texts = []
    with open(path, encoding="utf-8") as source:
        for line in source:
            texts.append(json.loads(line)["text"])
            if len(texts) >= limit:
                break
    return texts


async def run(url, model, concurrency, requests, texts):
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    completed = 0
    with tempfile.TemporaryFile("w") as results:
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(index):
                nonlocal completed
                body = {
                    "model": model,
                    "messages": [
                        {"role": "system", "content": "You rewrite documents."},
                        {"role": "user", "content": "Rewrite as an encyclopedia article.\n\nDocument:\n" + texts[index % len(texts)]},
                    ],
                    "n": 1,
                    "temperature": 1.0,
                    "max_tokens": 1024,
                    "seed": index,
                }
                async with semaphore:
                    async with session.post(url + "/chat/completions", json=body) as response:
                        answer = await response.json()
                results.write(json.dumps({"index": index, "text": answer["choices"][0]["message"]["content"]}) + "\n")
                completed += 1

            await asyncio.gather(*(one(index) for index in range(requests)))
    return completed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    texts = load_texts(args.data, max(300, args.requests))
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    completed = asyncio.run(run(args.url, args.model, args.concurrency, args.requests, texts))
    seconds = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    print(json.dumps({
        "requests": completed,
        "seconds": seconds,
        "reqPerSecond": completed / seconds,
        "cpuMicrosPerRequest": cpu / completed * 1e6,
    }))


if __name__ == "__main__":
    main()

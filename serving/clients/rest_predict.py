"""Classify texts with a tfpipe export on TensorFlow Serving (or `tfpipe serve`) over REST, standard library only.

Usage:
    python rest_predict.py http://localhost:8501 sst2 "a gripping film" "dull and far too long"
"""

import json
import sys
import urllib.error
import urllib.request

url, model, texts = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3:]
body = {"signature_name": "serving_default", "instances": [{"text": text} for text in texts]}
request = urllib.request.Request(f"{url}/v1/models/{model}:predict", data=json.dumps(body).encode("utf-8"),
                                 headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        predictions = json.load(response)["predictions"]
except urllib.error.HTTPError as error:  # TF Serving answers {"error": "..."} with the status
    sys.exit(f"HTTP {error.code}: {json.load(error).get('error')}")
for text, prediction in zip(texts, predictions):
    print(f"{prediction['labels']}\t{max(prediction['probabilities']):.3f}\t{text}")

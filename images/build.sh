#!/usr/bin/env bash
# Builds the agent images experiments/paper-common.kdl names, and prints the
# image id of each: what `ptb plan` hashes for the tag, and what to record
# (or push and pin as name@sha256:… by repo digest) so a rebuild that
# changed anything shows up as a changed input.
#
#   images/build.sh            the base, then all twelve agent images
#   images/build.sh claude-code:opus-4.6 …   the base and just those
#
# Needs the internet (CUDA base image, PyPI, npm, nodejs.org) and a Docker
# engine; the tests cannot run it (images/README.md says what they test).
# The model ids are the providers' names at the time of writing: check them
# against each provider before a run, since the tag is what the spec names.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
BASE_TAG=${BASE_TAG:-ptb/agent-base:1}

# image tag (as paper-common.kdl names it)   model id given to the CLI
agents=(
  "claude-code:opus-4.6              claude-opus-4-6"
  "claude-code:opus-4.5              claude-opus-4-5"
  "claude-code:sonnet-4.5            claude-sonnet-4-5"
  "claude-code:haiku-4.5             claude-haiku-4-5"
  "codex-cli:gpt-5.1-codex-max       gpt-5.1-codex-max"
  "codex-cli:gpt-5.2                 gpt-5.2"
  "gemini-cli:gemini-3.1-pro         gemini-3.1-pro"
  "gemini-cli:gemini-3-flash         gemini-3-flash"
  "opencode:gpt-5.1-codex-max        openai/gpt-5.1-codex-max"
  "opencode:gemini-3.1-pro           google/gemini-3.1-pro"
  "opencode:opus-4.5                 anthropic/claude-opus-4-5"
  "opencode:glm-4.6                  openrouter/z-ai/glm-4.6"
)

wanted() {
  [ $# -eq 0 ] && return 0
  local t
  for t in "${@:2}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

docker build -t "$BASE_TAG" -f "$here/base/Dockerfile" "$here"
built=("$BASE_TAG")
for line in "${agents[@]}"; do
  read -r tag model <<<"$line"
  if [ $# -gt 0 ] && ! wanted "$tag" "$@"; then continue; fi
  recipe=${tag%%:*}
  docker build -t "ptb/$tag" --build-arg "BASE=$BASE_TAG" --build-arg "MODEL=$model" "$here/$recipe"
  built+=("ptb/$tag")
done

echo
echo "image ids (ptb plan hashes these for the tags; push and pin name@sha256:<repo digest> to share them):"
for image in "${built[@]}"; do
  printf '  %-36s %s\n' "$image" "$(docker image inspect --format '{{.Id}}' "$image")"
done

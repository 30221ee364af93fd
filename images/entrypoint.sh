#!/bin/sh
# ptb-agent: the one entrypoint of every agent image (images/README.md).
#
# Reads the task prompt ptb rendered ($PTB_INPUT_TASK_MD, /inputs/task.md in
# a container), runs the image's CLI non-interactively with the agent's
# model, keeps what the CLI wrote (its stdout stream and its own session
# files) under $PTB_OUT/trace/ for the judge, forwards SIGTERM (and SIGINT,
# as SIGTERM) to the CLI, and exits with the CLI's status.
#
# The image sets PTB_AGENT_CLI (claude, codex, gemini or opencode),
# PTB_AGENT_MODEL (the model the CLI is told to use) and
# PTB_AGENT_SESSION_DIR (where that CLI keeps its transcripts).
#
# POSIX sh, not bash: the test image is busybox (tests/agent_images.rs).
# The stage's command runs as PID 1, which the kernel protects from signals
# it has no handler for: without the trap below, ptb's SIGTERM at the
# deadline would do nothing and the CLI would only ever see SIGKILL.
set -u

task=${PTB_INPUT_TASK_MD:-/inputs/task.md}
out=${PTB_OUT:-/output}
trace="$out/trace"
cli=${PTB_AGENT_CLI:-}
model=${PTB_AGENT_MODEL:-}

fail() {
    echo "ptb-agent: $*" >&2
    exit 2
}

[ -n "$cli" ] || fail "PTB_AGENT_CLI is not set (the image names its CLI)"
[ -n "$model" ] || fail "PTB_AGENT_MODEL is not set (the image names its model)"
[ -r "$task" ] || fail "no task prompt at $task (ptb mounts it as the input task.md)"
mkdir -p "$trace" || fail "cannot create $trace"
prompt=$(cat "$task")

# Each CLI's non-interactive mode, as the reference harness's agents/*/solve.sh
# run it: no permission prompts, the whole task as one prompt, a
# machine-readable stream on stdout where the CLI has one.
case "$cli" in
    claude) set -- claude --print --verbose --output-format stream-json --dangerously-skip-permissions --model "$model" "$prompt" ;;
    codex) set -- codex --search exec --json --skip-git-repo-check --yolo --model "$model" "$prompt" ;;
    gemini) set -- gemini --yolo --model "$model" --prompt "$prompt" ;;
    opencode) set -- opencode run --format json --model "$model" "$prompt" ;;
    *) fail "unknown PTB_AGENT_CLI \`$cli\` (claude, codex, gemini or opencode)" ;;
esac

"$@" >"$trace/stdout.jsonl" 2>"$trace/stderr.log" &
child=$!
# SIGINT goes on as SIGTERM: sh starts a background command with SIGINT
# ignored, so the CLI would never see it.
trap 'kill -TERM "$child" 2>/dev/null' TERM INT

# A trapped signal interrupts `wait` (status > 128) while the CLI may still be
# running or not yet reaped (`kill -0` succeeds on a zombie): wait again for
# the CLI's own status.
while :; do
    wait "$child"
    status=$?
    if [ "$status" -gt 128 ] && kill -0 "$child" 2>/dev/null; then
        continue
    fi
    break
done

# The CLI's own transcript (its session files), for the judge. Copied after
# the CLI has exited, so it is complete; a missing directory is no error
# (the CLI may have failed before writing one).
if [ -n "${PTB_AGENT_SESSION_DIR:-}" ] && [ -d "$PTB_AGENT_SESSION_DIR" ]; then
    mkdir -p "$trace/session" && cp -R "$PTB_AGENT_SESSION_DIR/." "$trace/session/"
fi
exit "$status"

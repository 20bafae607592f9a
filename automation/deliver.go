package automation

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Delivery headers of a webhook POST (the contract of README "Automations").
const (
	HeaderEvent     = "X-Modelreg-Event"
	HeaderDelivery  = "X-Modelreg-Delivery"
	HeaderTimestamp = "X-Modelreg-Timestamp"
	HeaderSignature = "X-Modelreg-Signature-256"
)

// Bounds of one delivery attempt.
const (
	// requestTimeout bounds one HTTP delivery, as GitHub's 10 s webhook
	// timeout does: a receiver should queue work, not do it in the request.
	requestTimeout = 10 * time.Second
	// commandTimeout bounds one command run.
	commandTimeout = time.Minute
)

// Sign returns the X-Modelreg-Signature-256 value of a delivery:
// "sha256=" and the hex HMAC-SHA256, keyed by secret, of the timestamp
// (decimal unix seconds, the X-Modelreg-Timestamp header), ".", and the
// body. Signing the timestamp lets receivers refuse replays of old
// deliveries (Stripe's and Slack's scheme).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// attempt is the outcome of one delivery attempt.
type attempt struct {
	status int
	// retry is false for answers that will not heal by themselves (a 4xx
	// other than 408 and 429): the event goes to the dead-letter log at once.
	retry bool
	err   error
}

// target is one destination of an automation, with its own queue.
type target struct {
	auto *Automation
	kind string // webhook, slack, teams, command
	send func(ctx context.Context, e Event) attempt
}

func (t *target) queue() string { return t.auto.Name + "/" + t.kind }

func targets(a *Automation, hc *http.Client) []*target {
	var out []*target
	if a.Webhook != nil {
		w := a.Webhook
		out = append(out, &target{auto: a, kind: "webhook", send: func(ctx context.Context, e Event) attempt {
			body, _ := json.Marshal(e)
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			h := http.Header{}
			h.Set(HeaderEvent, e.Type)
			h.Set(HeaderDelivery, e.ID)
			h.Set(HeaderTimestamp, ts)
			h.Set(HeaderSignature, Sign(w.Secret, ts, body))
			return post(ctx, hc, w.URL, h, body)
		}})
	}
	if a.Slack != nil {
		u := a.Slack.URL
		out = append(out, &target{auto: a, kind: "slack", send: func(ctx context.Context, e Event) attempt {
			body, _ := json.Marshal(SlackMessage(e))
			return post(ctx, hc, u, http.Header{}, body)
		}})
	}
	if a.Teams != nil {
		u := a.Teams.URL
		out = append(out, &target{auto: a, kind: "teams", send: func(ctx context.Context, e Event) attempt {
			body, _ := json.Marshal(TeamsMessage(e))
			return post(ctx, hc, u, http.Header{}, body)
		}})
	}
	if a.Command != nil {
		argv := a.Command
		out = append(out, &target{auto: a, kind: "command", send: func(ctx context.Context, e Event) attempt {
			return runCommand(ctx, argv, e)
		}})
	}
	return out
}

// post sends body as JSON. Errors name the host only: chat webhook URLs
// carry their secret in the path.
func post(ctx context.Context, hc *http.Client, url string, h http.Header, body []byte) attempt {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return attempt{err: errors.New("bad target URL")}
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "modelreg-watch")
	resp, err := hc.Do(req)
	if err != nil {
		return attempt{retry: true, err: redact(err, req.URL.Host)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return attempt{status: s}
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return attempt{status: s, retry: true, err: fmt.Errorf("%s answered %s", req.URL.Host, resp.Status)}
	default:
		return attempt{status: s, err: fmt.Errorf("%s answered %s, which retrying will not change", req.URL.Host, resp.Status)}
	}
}

// redact turns a transport error into one that names only the host.
func redact(err error, host string) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Errorf("%s did not answer within %s", host, requestTimeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("delivery to %s canceled", host)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("%s: %s %s", host, op.Op, op.Err)
	}
	return fmt.Errorf("%s: request failed", host)
}

// runCommand runs argv with the event JSON on stdin and MODELREG_EVENT,
// MODELREG_DELIVERY in its environment; a non-zero exit is retried.
func runCommand(ctx context.Context, argv []string, e Event) attempt {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	body, _ := json.Marshal(e)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), "MODELREG_EVENT="+e.Type, "MODELREG_DELIVERY="+e.ID)
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 2048}
	err := cmd.Run()
	if err == nil {
		return attempt{}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg := strings.TrimSpace(stderr.String())
		return attempt{status: ee.ExitCode(), retry: true, err: fmt.Errorf("%s exited with %d: %s", argv[0], ee.ExitCode(), msg)}
	}
	return attempt{retry: true, err: fmt.Errorf("running %s: %w", argv[0], err)}
}

type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

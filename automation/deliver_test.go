package automation

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSign checks the signature against a vector computed independently:
// python3 -c "import hmac,hashlib; print(hmac.new(b\"It's a Secret to Everybody\",
// b'1700000000.{\"id\":\"x\"}', hashlib.sha256).hexdigest())"
func TestSign(t *testing.T) {
	got := Sign([]byte("It's a Secret to Everybody"), "1700000000", []byte(`{"id":"x"}`))
	if want := "sha256=c320323ef734af056c9c2d77eadaa4e85caf99e92950b513a093d21a4dd49a36"; got != want {
		t.Errorf("Sign = %s; want %s", got, want)
	}
}

func TestWebhookHeadersAndOutcomes(t *testing.T) {
	status := http.StatusOK
	var hdr http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr = r.Header.Clone()
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	a := &Automation{Name: "n", Webhook: &Webhook{URL: srv.URL + "/hook?token=secret-in-url", Secret: []byte("k")}}
	tg := targets(a, srv.Client())[0]
	e := Event{ID: "abc", Type: VersionCreated}
	if res := tg.send(context.Background(), e); res.err != nil {
		t.Fatal(res.err)
	}
	if hdr.Get(HeaderEvent) != VersionCreated || hdr.Get(HeaderDelivery) != "abc" ||
		hdr.Get(HeaderSignature) != Sign([]byte("k"), hdr.Get(HeaderTimestamp), body) {
		t.Errorf("headers %v", hdr)
	}
	for _, c := range []struct {
		status int
		retry  bool
	}{{503, true}, {429, true}, {408, true}, {500, true}, {404, false}, {401, false}} {
		status = c.status
		res := tg.send(context.Background(), e)
		if res.err == nil || res.retry != c.retry || res.status != c.status {
			t.Errorf("status %d: %+v", c.status, res)
		}
		if res.err != nil && strings.Contains(res.err.Error(), "secret-in-url") {
			t.Errorf("error shows the URL: %v", res.err)
		}
	}
}

func TestBackoffDoublesToTheCap(t *testing.T) {
	r := Retry{Backoff: 1, MaxBackoff: 5}
	var got []int
	for n := 1; n <= 5; n++ {
		got = append(got, int(backoff(r, n)))
	}
	if want := []int{1, 2, 4, 5, 5}; !equalInts(got, want) {
		t.Errorf("backoff = %v; want %v", got, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

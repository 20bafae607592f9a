package main

import (
	"io"
	"slices"
	"testing"
)

// TestReorderGlobalFlags: global flags after the command move in front of
// it with their values and in the order given, since --mirror is tried in
// that order.
func TestReorderGlobalFlags(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	got := reorderArgs(app, []string{"modelreg", "--mirror", "a", "pull", "h/r:v1", "dir", "--mirror", "b", "--ca-file", "ca.pem", "--key", "k.pub", "--mirror=c"})
	want := []string{"modelreg", "--mirror", "a", "--mirror", "b", "--ca-file", "ca.pem", "--mirror=c", "pull", "--key", "k.pub", "--", "h/r:v1", "dir"}
	if !slices.Equal(got, want) {
		t.Errorf("reorderArgs:\n got %q\nwant %q", got, want)
	}
}

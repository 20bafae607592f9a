package automation

import (
	"strings"
	"testing"
)

func TestStateFolderTakesOneWatcher(t *testing.T) {
	dir := t.TempDir()
	if err := lockState(dir); err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in this
	// process conflicts just as another process would.
	if err := lockState(dir); err == nil || !strings.Contains(err.Error(), "in use by another modelreg watch") {
		t.Errorf("second lock: %v", err)
	}
}

func TestDeliveriesSkipsATornLine(t *testing.T) {
	dir := t.TempDir()
	s, fresh, err := openStore(dir)
	if err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	for i := range 3 {
		if err := s.appendLine(deliveriesFile, Delivery{ID: string(rune('a' + i)), Outcome: "delivered"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.appendLine(deliveriesFile, "x"); err != nil { // not a Delivery object
		t.Fatal(err)
	}
	ds, err := Deliveries(dir, 2)
	if err != nil || len(ds) != 2 || ds[0].ID != "b" || ds[1].ID != "c" {
		t.Errorf("Deliveries = %+v, %v", ds, err)
	}
}

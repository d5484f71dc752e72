package supervisor

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/daemon/app"
)

func TestListenSpecRoundTrip(t *testing.T) {
	socks := map[string]app.Inherited{
		"[::1]:0":        {Addr: "[::1]:4000", FDs: []int{10, 11}},
		"127.0.0.1:8080": {Addr: "127.0.0.1:8080", FDs: []int{7, 8, 9}},
	}
	spec := formatListen(socks, 4)
	// Sorted by configured address, descriptors numbered from 4 in that order.
	if want := "127.0.0.1:8080|127.0.0.1:8080|4,5,6;[::1]:0|[::1]:4000|7,8"; spec != want {
		t.Fatalf("formatListen = %q, want %q", spec, want)
	}
	got, err := parseListen(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]app.Inherited{
		"127.0.0.1:8080": {Addr: "127.0.0.1:8080", FDs: []int{4, 5, 6}},
		"[::1]:0":        {Addr: "[::1]:4000", FDs: []int{7, 8}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseListen = %v, want %v", got, want)
	}
	for _, bad := range []string{"a|b", "a|b|", "|b|4", "a||4", "a|b|x", "a|b|4,", "a|b|2", "a|b|4;"} {
		if _, err := parseListen(bad); err == nil {
			t.Errorf("parseListen(%q) succeeded", bad)
		}
	}
	if m, err := parseListen(""); m != nil || err != nil {
		t.Errorf("parseListen(\"\") = %v, %v", m, err)
	}
}

func TestReadEnv(t *testing.T) {
	t.Setenv(envWorker, "2")
	t.Setenv(envProcesses, "4")
	t.Setenv(envListen, "a:1|127.0.0.1:1|4,5")
	t.Setenv(envStats, "7|/dev/shm/x y")
	t.Setenv("GALE_UNRELATED", "kept")
	e, err := readEnv()
	if err != nil {
		t.Fatal(err)
	}
	if e.worker != 2 || e.processes != 4 || e.statsSlot != 7 || e.statsPath != "/dev/shm/x y" || e.ready != nil ||
		!reflect.DeepEqual(e.listeners, map[string]app.Inherited{"a:1": {Addr: "127.0.0.1:1", FDs: []int{4, 5}}}) {
		t.Fatalf("readEnv = %+v", e)
	}
	for _, n := range envNames {
		if _, ok := os.LookupEnv(n); ok {
			t.Errorf("%s still set after readEnv", n)
		}
	}
	for _, kv := range cleanEnv() {
		if strings.HasPrefix(kv, "GALE_WORKER=") {
			t.Errorf("cleanEnv kept %s", kv)
		}
	}
	if os.Getenv("GALE_UNRELATED") != "kept" {
		t.Error("readEnv removed an unrelated variable")
	}

	// A top-level process: nothing set.
	if e, err := readEnv(); err != nil || e.worker != -1 || e.statsSlot != -1 || e.listeners != nil {
		t.Fatalf("readEnv with nothing set = %+v, %v", e, err)
	}
	t.Setenv(envStats, "|/p")
	if e, err := readEnv(); err != nil || e.statsPath != "/p" || e.statsSlot != -1 {
		t.Fatalf("successor stats = %+v, %v", e, err)
	}
	bad := []map[string]string{
		{envWorker: "x"},
		{envWorker: "-1"},
		{envWorker: "3", envProcesses: "3"},
		{envWorker: "0"},
		{envStats: "/no/slot"},
		{envStats: "x|/p"},
		{envStats: "1|"},
		{envReady: "2"},
		{envReady: "x"},
		{envListen: "nonsense"},
	}
	for _, vars := range bad {
		for k, v := range vars {
			t.Setenv(k, v)
		}
		if _, err := readEnv(); err == nil {
			t.Errorf("readEnv accepted %v", vars)
		}
		for k := range vars {
			os.Unsetenv(k)
		}
		os.Unsetenv(envProcesses)
	}
}

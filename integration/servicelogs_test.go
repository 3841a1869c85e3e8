package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// taskRow is one line of `docker service ps --no-trunc`: a task's ID, slot and node hostname.
type taskRow struct{ id, slot, node string }

func serviceTasks(h *clusterHost, service string) []taskRow {
	out := h.must("service", "ps", service, "--no-trunc", "--filter", "desired-state=running", "--format", "{{.ID}} {{.Name}} {{.Node}}")
	var rows []taskRow
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		rows = append(rows, taskRow{id: f[0], slot: strings.TrimPrefix(f[1], service+"."), node: f[2]})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].slot < rows[j].slot })
	return rows
}

// sortedLines are s's non-empty lines, sorted: the nodes' streams interleave in any order.
func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// TestClusterServiceLogs runs `docker service logs` against a manager for a service whose tasks run on
// the manager and on a worker: the manager gathers each task's lines from the node that runs it.
func TestClusterServiceLogs(t *testing.T) {
	c := newTestCluster(t, "lm1", "lw1")
	m1, w1 := c.host("lm1"), c.host("lw1")
	c.workerSwarm()
	// Pauses between the lines order them in the log, which --tail relies on.
	m1.must("service", "create", "-d", "--no-resolve-image", "--name", "greet", "--replicas", "2", "--env", "SLOT={{.Task.Slot}}",
		"--stop-grace-period", "1s", busybox, "sh", "-c", "echo first-$SLOT; sleep 0.2; echo oops-$SLOT >&2; sleep 0.2; echo hello-$SLOT; sleep 1000")
	eventually(t, 20*time.Second, func() string {
		if on := runningOn(m1, "greet"); on["lm1"] != 1 || on["lw1"] != 1 {
			return fmt.Sprintf("greet not on both nodes: %v", on)
		}
		return ""
	})
	tasks := serviceTasks(m1, "greet")
	if len(tasks) != 2 {
		t.Fatalf("tasks: %+v", tasks)
	}
	prefix := func(tk taskRow) string { return fmt.Sprintf("greet.%s.%s@%s    | ", tk.slot, tk.id[:12], tk.node) }
	var wantOut, wantErr, wantTail []string
	for _, tk := range tasks {
		wantOut = append(wantOut, prefix(tk)+"first-"+tk.slot, prefix(tk)+"hello-"+tk.slot)
		wantErr = append(wantErr, prefix(tk)+"oops-"+tk.slot)
		wantTail = append(wantTail, prefix(tk)+"hello-"+tk.slot)
	}
	sort.Strings(wantOut)
	sort.Strings(wantErr)
	sort.Strings(wantTail)

	// The containers print as they start; wait until the last line is in both logs.
	eventually(t, 20*time.Second, func() string {
		r := m1.docker("service", "logs", "greet")
		if r.code != 0 || fmt.Sprint(sortedLines(r.stdout)) != fmt.Sprint(wantOut) || fmt.Sprint(sortedLines(r.stderr)) != fmt.Sprint(wantErr) {
			return fmt.Sprintf("service logs: %s\nwant stdout %q\nwant stderr %q", r, wantOut, wantErr)
		}
		return ""
	})

	// The berth CLI prints the same.
	if r := m1.berth("service", "logs", "greet"); r.code != 0 || fmt.Sprint(sortedLines(r.stdout)) != fmt.Sprint(wantOut) || fmt.Sprint(sortedLines(r.stderr)) != fmt.Sprint(wantErr) {
		t.Errorf("berth service logs: %s", r)
	}
	if r := m1.berth("service", "logs", "--tail", "1", tasks[1].id[:12]); r.code != 0 || fmt.Sprint(sortedLines(r.stdout)) != fmt.Sprint([]string{prefix(tasks[1]) + "hello-" + tasks[1].slot}) {
		t.Errorf("berth service logs TASK: %s", r)
	}
	if r := m1.berth("service", "logs", "nope"); r.code == 0 || !strings.Contains(r.stderr, "no such task or service: nope") {
		t.Errorf("berth service logs nope: %s", r)
	}

	cases := []struct {
		name   string
		args   []string
		stdout []string
	}{
		{"tail", []string{"--tail", "1", "greet"}, wantTail},
		{"task ID", []string{tasks[1].id}, []string{prefix(tasks[1]) + "first-" + tasks[1].slot, prefix(tasks[1]) + "hello-" + tasks[1].slot}},
		{"no task IDs", []string{"--no-task-ids", "--tail", "1", tasks[0].id}, []string{fmt.Sprintf("greet.%s@%s    | hello-%s", tasks[0].slot, tasks[0].node, tasks[0].slot)}},
		{"since later", []string{"--since", time.Now().UTC().Format(time.RFC3339Nano), "greet"}, nil},
	}
	for _, tc := range cases {
		r := m1.docker(append([]string{"service", "logs"}, tc.args...)...)
		if r.code != 0 || fmt.Sprint(sortedLines(r.stdout)) != fmt.Sprint(tc.stdout) {
			t.Errorf("%s: %s\nwant stdout %q", tc.name, r, tc.stdout)
		}
	}
	r := m1.docker("service", "logs", "--timestamps", "--no-resolve", "--tail", "1", tasks[0].id)
	if !regexpMatch(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \w+\.`+tasks[0].slot+`\.\w{12}@\w{25}    \| hello-`+tasks[0].slot+"\n$", r.stdout) {
		t.Errorf("timestamps, no-resolve: %s", r)
	}

	// Unknown names: the CLI's words after the API's 404, which the API gives for the logs route too.
	if r := m1.docker("service", "logs", "nope"); r.code == 0 || !strings.Contains(r.stderr, "no such task or service: nope") {
		t.Errorf("service logs nope: %s", r)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", m1.sock)
	}}}
	resp, err := hc.Get("http://berth/v1.45/services/nope/logs?stdout=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no such task or service: nope") {
		t.Errorf("GET /services/nope/logs: %d %s", resp.StatusCode, body)
	}
	if r := w1.docker("service", "logs", "greet"); r.code == 0 || !strings.Contains(r.stderr, "not a swarm manager") {
		t.Errorf("service logs on a worker: %s", r)
	}

	// Following: the lines there are, then those of a task started later, until the client goes.
	cmd := exec.Command(dockerBin(), "service", "logs", "--follow", "--tail", "1", "greet")
	cmd.Env = m1.env()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 100)
	go func() {
		defer close(exited)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_ = cmd.Wait()
	}()
	want := map[string]bool{}
	for _, l := range wantTail {
		want[l] = true
	}
	expect := func(what string, done func() bool) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for !done() {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("follow ended while waiting for %s", what)
				}
				delete(want, l)
				if regexpMatch(`^greet\.3\.\w{12}@(lm1|lw1) +\| hello-3$`, l) {
					want["3"] = false
				}
			case <-timeout:
				t.Fatalf("follow: still waiting for %s: %v", what, want)
			}
		}
	}
	expect("the tasks' last lines", func() bool { return len(want) == 0 })
	m1.must("service", "scale", "-d", "greet=3")
	want["3"] = true
	expect("the new task's line", func() bool { return !want["3"] })
	_ = cmd.Process.Kill()
	<-exited
	m1.must("service", "rm", "greet")

	// A TTY service's logs are one raw stream, which the docker CLI shows only with --raw.
	m1.must("service", "create", "-d", "--no-resolve-image", "--name", "tty", "--tty", "--replicas", "2", "--stop-grace-period", "1s",
		busybox, "sh", "-c", "echo hi-tty; sleep 1000")
	eventually(t, 20*time.Second, func() string {
		if r := m1.docker("service", "logs", "--raw", "tty"); r.code != 0 || r.stdout != "hi-tty\r\nhi-tty\r\n" {
			return fmt.Sprintf("tty service logs: %s", r)
		}
		return ""
	})
	if r := m1.docker("service", "logs", "tty"); r.code == 0 || !strings.Contains(r.stderr, "tty service logs only supported with --raw") {
		t.Errorf("tty service logs without --raw: %s", r)
	}
	m1.must("service", "rm", "tty")
}

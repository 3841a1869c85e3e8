package integration

// The cluster's task executor (internal/cluster/executor) runs inside berthd. Until the cluster drives
// it, berthd serves it on a debug socket when BERTH_EXECUTOR_DEBUG_SOCK is set (internal/daemon/
// executor.go); these tests hand it task sets there and check the containers it makes through the
// Docker API and the host's cgroup files.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

const executorNode = "berthitnode1"

func executorSock() string { return filepath.Join(env.tmp, "executor-debug.sock") }

func executorDebugEnv() []string {
	return []string{"BERTH_EXECUTOR_DEBUG_SOCK=" + executorSock(), "BERTH_EXECUTOR_DEBUG_NODE=" + executorNode}
}

type execTask struct {
	Status  swarm.TaskStatus
	History []swarm.TaskState
	Times   []time.Time
}

func executorClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", executorSock())
	}}, Timeout: 30 * time.Second}
}

// applyTasks hands the executor the node's full task set.
func applyTasks(t testing.TB, as []executor.Assignment) {
	t.Helper()
	body, _ := json.Marshal(as)
	resp, err := executorClient().Post("http://executor/apply", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		t.Fatalf("apply: %s: %s", resp.Status, b.String())
	}
}

func executorTasks(t testing.TB) map[string]execTask {
	t.Helper()
	resp, err := executorClient().Get("http://executor/tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]execTask{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitTask waits until the task reaches state (or any terminal state, which fails the test unless it is
// the one wanted).
func waitTask(t testing.TB, id string, state swarm.TaskState, timeout time.Duration) execTask {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last execTask
	for time.Now().Before(deadline) {
		last = executorTasks(t)[id]
		if last.Status.State == state {
			return last
		}
		if executor.Terminal(last.Status.State) {
			t.Fatalf("task %s ended %s (err %q), want %s; history %v", id, last.Status.State, last.Status.Err, state, last.History)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("task %s: %s after %v, want %s; history %v", id, last.Status.State, timeout, state, last.History)
	return last
}

func newTaskID() string {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:25]
}

// taskSet builds n replicated tasks of one service.
func taskSet(service string, n int, cs swarm.ContainerSpec, res *swarm.ResourceRequirements) []executor.Assignment {
	svcID := newTaskID()
	var as []executor.Assignment
	for i := 1; i <= n; i++ {
		spec := cs
		as = append(as, executor.Assignment{ServiceName: service, Task: swarm.Task{
			ID: newTaskID(), ServiceID: svcID, Slot: i, NodeID: executorNode, DesiredState: swarm.TaskStateRunning,
			Spec: swarm.TaskSpec{ContainerSpec: &spec, Resources: res},
		}})
	}
	return as
}

// cleanupTasks empties the node's task set when the test ends, and removes any task container left.
func cleanupTasks(t *testing.T) {
	t.Cleanup(func() {
		applyTasks(t, nil)
		out, _ := dockerCmd("ps", "-aq", "--filter", "label="+executor.LabelTaskID).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = dockerCmd(append([]string{"rm", "-f"}, ids...)...).Run()
		}
	})
}

func taskContainers(t testing.TB, service string) []container.Summary {
	t.Helper()
	list, err := sdk(t).ContainerList(ctxT(t, 10*time.Second), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", executor.LabelServiceName+"="+service))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestExecutorReplicas(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	init := true
	as := taskSet(svc, 3, swarm.ContainerSpec{
		Image: busybox, Command: []string{"sh", "-c"}, Args: []string{"echo $GREETING > /scratch/x; exec sleep 1000"},
		Env: []string{"GREETING=hello", "TASK={{.Task.Name}}"}, Dir: "/tmp", Hostname: "task-{{.Task.Slot}}", Init: &init,
		User: "1234:1234", ReadOnly: true,
		Labels: map[string]string{"tier": "web"},
		Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/scratch"}},
	}, &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 5e8, MemoryBytes: 64 << 20, Pids: 50}})
	start := time.Now()
	applyTasks(t, as)
	for _, a := range as {
		got := waitTask(t, a.Task.ID, swarm.TaskStateRunning, 20*time.Second)
		want := []swarm.TaskState{"accepted", "preparing", "ready", "starting", "running"}
		if fmt.Sprint(got.History) != fmt.Sprint(want) {
			t.Errorf("task %s went through %v, want %v", a.Task.ID, got.History, want)
		}
		if got.Status.ContainerStatus == nil || got.Status.ContainerStatus.ContainerID == "" || got.Status.ContainerStatus.PID == 0 {
			t.Errorf("running task's container status: %+v", got.Status.ContainerStatus)
		}
	}
	t.Logf("3 replicas running %v after apply", time.Since(start))

	for _, a := range as {
		name := fmt.Sprintf("%s.%d.%s", svc, a.Task.Slot, a.Task.ID)
		ci, err := sdk(t).ContainerInspect(ctxT(t, 10*time.Second), name)
		if err != nil {
			t.Fatalf("task container %s: %v", name, err)
		}
		l := ci.Config.Labels
		for k, v := range map[string]string{
			executor.LabelTaskID: a.Task.ID, executor.LabelTaskName: name, executor.LabelServiceName: svc,
			executor.LabelServiceID: a.Task.ServiceID, executor.LabelNodeID: executorNode, "tier": "web",
		} {
			if l[k] != v {
				t.Errorf("%s: label %s = %q, want %q", name, k, l[k], v)
			}
		}
		if ci.HostConfig.RestartPolicy.Name != "no" {
			t.Errorf("restart policy %q: the cluster restarts tasks, not the engine", ci.HostConfig.RestartPolicy.Name)
		}
		want := fmt.Sprintf("hello\n/tmp\ntask-%d\n%s\ndocker-init\n1234:1234\nread-only", a.Task.Slot, name)
		script := "cat /scratch/x; pwd; hostname; echo $TASK; ps -o comm | sed -n 2p; echo $(id -u):$(id -g); touch /x 2>/dev/null || echo read-only"
		if out := mustDocker(t, "exec", name, "sh", "-c", script); out != want {
			t.Errorf("inside the task: %q", out)
		}
		if cgroupV2() {
			if got := strings.TrimSpace(readFile(t, hostCgroupFile(ci.ID, "memory.max"))); got != "67108864" {
				t.Errorf("memory.max %s", got)
			}
			if got := strings.TrimSpace(readFile(t, hostCgroupFile(ci.ID, "cpu.max"))); got != "50000 100000" {
				t.Errorf("cpu.max %s", got)
			}
			if got := strings.TrimSpace(readFile(t, hostCgroupFile(ci.ID, "pids.max"))); got != "50" {
				t.Errorf("pids.max %s", got)
			}
		} else if got := readCgroupUint(t, ci.ID, "memory/memory.limit_in_bytes"); got != 64<<20 {
			t.Errorf("memory limit %d", got)
		}
	}

	// Idempotent: the same set again changes nothing.
	before := executorTasks(t)
	applyTasks(t, as)
	time.Sleep(300 * time.Millisecond)
	after := executorTasks(t)
	for _, a := range as {
		if len(after[a.Task.ID].History) != len(before[a.Task.ID].History) {
			t.Errorf("re-applying the same set moved task %s: %v", a.Task.ID, after[a.Task.ID].History)
		}
	}
	if n := len(taskContainers(t, svc)); n != 3 {
		t.Errorf("%d containers after applying twice, want 3", n)
	}

	// Scale down: a task that leaves the set loses its container.
	applyTasks(t, as[:2])
	deadline := time.Now().Add(10 * time.Second)
	for len(taskContainers(t, svc)) != 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(taskContainers(t, svc)); n != 2 {
		t.Fatalf("%d containers after removing a task, want 2", n)
	}
	if r := docker(t, "inspect", fmt.Sprintf("%s.3.%s", svc, as[2].Task.ID)); r.code == 0 {
		t.Errorf("removed task's container still there")
	}
}

func TestExecutorExitCodes(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	ok := taskSet(svc+"-ok", 1, swarm.ContainerSpec{Image: busybox, Command: []string{"true"}}, nil)
	bad := taskSet(svc+"-bad", 1, swarm.ContainerSpec{Image: busybox, Command: []string{"sh", "-c", "exit 3"}}, nil)
	applyTasks(t, append(ok, bad...))
	done := waitTask(t, ok[0].Task.ID, swarm.TaskStateComplete, 20*time.Second)
	if done.Status.Err != "" || done.Status.Message != "finished" || done.Status.ContainerStatus == nil || done.Status.ContainerStatus.ExitCode != 0 {
		t.Errorf("complete task: %+v", done.Status)
	}
	failed := waitTask(t, bad[0].Task.ID, swarm.TaskStateFailed, 20*time.Second)
	if failed.Status.Err != "task: non-zero exit (3)" || failed.Status.ContainerStatus == nil || failed.Status.ContainerStatus.ExitCode != 3 {
		t.Errorf("failed task: err %q container %+v", failed.Status.Err, failed.Status.ContainerStatus)
	}
	// The engine does not restart a failed task's container: the cluster replaces the task.
	time.Sleep(300 * time.Millisecond)
	name := fmt.Sprintf("%s-bad.1.%s", svc, bad[0].Task.ID)
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", name); st != "exited 3 0" {
		t.Errorf("failed task's container: %s", st)
	}
}

func TestExecutorRejected(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	for _, tc := range []struct{ image, err string }{
		{"nosuch-executor-image:latest", "No such image: nosuch-executor-image:latest"},
		{"127.0.0.1:1/nosuch:v1", "No such image: 127.0.0.1:1/nosuch:v1"},
	} {
		as := taskSet(svc, 1, swarm.ContainerSpec{Image: tc.image, Command: []string{"true"}}, nil)
		applyTasks(t, as)
		got := waitTask(t, as[0].Task.ID, swarm.TaskStateRejected, 30*time.Second)
		if got.Status.Err != tc.err {
			t.Errorf("%s: rejected with %q, want %q", tc.image, got.Status.Err, tc.err)
		}
		if n := len(taskContainers(t, svc)); n != 0 {
			t.Errorf("%s: %d containers for a rejected task", tc.image, n)
		}
	}
	// A set listing a task twice is refused whole: nothing of it is applied.
	dup := taskSet(svc+"-dup", 1, swarm.ContainerSpec{Image: busybox, Command: []string{"sleep", "1000"}}, nil)
	body, _ := json.Marshal(append(dup, dup[0]))
	resp, err := executorClient().Post("http://executor/apply", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	_, _ = msg.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.String(), "is assigned twice") {
		t.Errorf("duplicate task: %s %q", resp.Status, msg.String())
	}
	if _, ok := executorTasks(t)[dup[0].Task.ID]; ok {
		t.Errorf("a refused set was applied")
	}

	// A task without a container spec is rejected too, and does not stop the rest of the set.
	good := taskSet(svc+"-good", 1, swarm.ContainerSpec{Image: busybox, Command: []string{"sleep", "1000"}}, nil)
	empty := executor.Assignment{ServiceName: svc + "-empty", Task: swarm.Task{ID: newTaskID(), Slot: 1, DesiredState: swarm.TaskStateRunning}}
	applyTasks(t, append(good, empty))
	if got := waitTask(t, empty.Task.ID, swarm.TaskStateRejected, 10*time.Second); !strings.Contains(got.Status.Err, "no ContainerSpec") {
		t.Errorf("task without container spec: %q", got.Status.Err)
	}
	waitTask(t, good[0].Task.ID, swarm.TaskStateRunning, 20*time.Second)
}

func TestExecutorHealthcheck(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	grace := time.Second
	healthy := taskSet(svc+"-ok", 1, swarm.ContainerSpec{
		Image: busybox, Command: []string{"sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 1000"},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "test", "-f", "/tmp/ok"}, Interval: 200 * time.Millisecond, Retries: 50},
	}, nil)
	sick := taskSet(svc+"-sick", 1, swarm.ContainerSpec{
		Image: busybox, Command: []string{"sleep", "1000"}, StopGracePeriod: &grace,
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "false"}, Interval: 200 * time.Millisecond, Retries: 2},
	}, nil)
	// Healthy first (so running), then its check starts failing.
	turns := taskSet(svc+"-turns", 1, swarm.ContainerSpec{
		Image: busybox, Command: []string{"sh", "-c", "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 1000"}, StopGracePeriod: &grace,
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "test", "-f", "/tmp/ok"}, Interval: 200 * time.Millisecond, Retries: 2},
	}, nil)
	start := time.Now()
	applyTasks(t, append(append(healthy, sick...), turns...))
	waitTask(t, healthy[0].Task.ID, swarm.TaskStateStarting, 10*time.Second)
	got := waitTask(t, healthy[0].Task.ID, swarm.TaskStateRunning, 20*time.Second)
	if d := time.Since(start); d < time.Second {
		t.Errorf("task running after %v, before its healthcheck could pass", d)
	}
	name := fmt.Sprintf("%s-ok.1.%s", svc, healthy[0].Task.ID)
	if h := mustDocker(t, "inspect", "-f", "{{.State.Health.Status}}", name); h != "healthy" {
		t.Errorf("running task's container health %s (status %+v)", h, got.Status)
	}

	failed := waitTask(t, sick[0].Task.ID, swarm.TaskStateFailed, 20*time.Second)
	if failed.Status.Err != "task: non-zero exit (137): unhealthy container" {
		t.Errorf("unhealthy task: err %q, history %v", failed.Status.Err, failed.History)
	}
	if h := failed.History; len(h) < 2 || h[len(h)-2] != swarm.TaskStateStarting {
		t.Errorf("unhealthy task history %v: it never ran", h)
	}
	turned := waitTask(t, turns[0].Task.ID, swarm.TaskStateFailed, 20*time.Second)
	if turned.Status.Err != "task: non-zero exit (137): unhealthy container" || turned.Status.ContainerStatus == nil || turned.Status.ContainerStatus.ExitCode != 137 {
		t.Errorf("task turned unhealthy: %+v", turned.Status)
	}
	if h := turned.History; len(h) < 2 || h[len(h)-2] != swarm.TaskStateRunning {
		t.Errorf("task turned unhealthy went through %v, want running then failed", h)
	}
	sickName := fmt.Sprintf("%s-sick.1.%s", svc, sick[0].Task.ID)
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}}", sickName); st != "exited" {
		t.Errorf("unhealthy task's container is %s, want exited", st)
	}
}

func TestExecutorShutdown(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	grace := 2 * time.Second
	// PID 1 without a TERM handler ignores SIGTERM: only the grace period's SIGKILL ends it.
	stubborn := taskSet(svc+"-stubborn", 1, swarm.ContainerSpec{Image: busybox, Command: []string{"sleep", "1000"}, StopGracePeriod: &grace}, nil)
	// This one honours its stop signal at once.
	polite := taskSet(svc+"-polite", 1, swarm.ContainerSpec{Image: busybox, StopSignal: "SIGUSR1",
		Command: []string{"sh", "-c", "trap 'exit 0' USR1; while true; do sleep 0.1; done"}}, nil)
	all := append(stubborn, polite...)
	applyTasks(t, all)
	for _, a := range all {
		waitTask(t, a.Task.ID, swarm.TaskStateRunning, 20*time.Second)
	}
	for i := range all {
		all[i].Task.DesiredState = swarm.TaskStateShutdown
	}
	start := time.Now()
	applyTasks(t, all)
	got := waitTask(t, polite[0].Task.ID, swarm.TaskStateShutdown, 10*time.Second)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("a task stopping on its stop signal took %v", d)
	}
	if got.Status.ContainerStatus == nil || got.Status.ContainerStatus.ExitCode != 0 {
		t.Errorf("polite task's container status %+v", got.Status.ContainerStatus)
	}
	waitTask(t, stubborn[0].Task.ID, swarm.TaskStateShutdown, 10*time.Second)
	if d := time.Since(start); d < 1800*time.Millisecond || d > 6*time.Second {
		t.Errorf("a task ignoring SIGTERM stopped after %v, want its 2s grace period", d)
	}
	name := fmt.Sprintf("%s-stubborn.1.%s", svc, stubborn[0].Task.ID)
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name); st != "exited 137" {
		t.Errorf("stubborn task's container: %s", st)
	}
	// Shut down tasks keep their (stopped) containers until the cluster drops them from the set.
	applyTasks(t, all)
	if n := len(taskContainers(t, svc+"-polite")); n != 1 {
		t.Errorf("%d containers of a shut down task, want 1 until the task is removed", n)
	}
	applyTasks(t, nil)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(taskContainers(t, svc+"-polite"))+len(taskContainers(t, svc+"-stubborn")) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(taskContainers(t, svc+"-polite")) + len(taskContainers(t, svc+"-stubborn")); n != 0 {
		t.Errorf("%d containers left after the tasks were removed", n)
	}
}

// TestExecutorAdoptsAfterRestart restarts berthd: the task containers are found by label and adopted,
// not duplicated, and those of tasks no longer assigned are removed.
func TestExecutorAdoptsAfterRestart(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	as := taskSet(svc, 4, swarm.ContainerSpec{Image: busybox, Command: []string{"sleep", "1000"}}, nil)
	applyTasks(t, as)
	ids := map[string]string{}
	pids := map[string]int{}
	for _, a := range as {
		got := waitTask(t, a.Task.ID, swarm.TaskStateRunning, 20*time.Second)
		ids[a.Task.ID] = got.Status.ContainerStatus.ContainerID
		pids[a.Task.ID] = got.Status.ContainerStatus.PID
	}

	stopDaemon(syscall.SIGKILL) // a crash: nothing is handed over but what is on disk and in the monitor
	// Task 3's process dies while berthd is down.
	if err := syscall.Kill(pids[as[3].Task.ID], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}
	// The cluster knows task 0 is running; task 1 it last saw assigned (the node died before reporting);
	// task 2 was removed from the node while it was down.
	as[0].Task.Status = swarm.TaskStatus{State: swarm.TaskStateRunning}
	as[1].Task.Status = swarm.TaskStatus{State: swarm.TaskStateAssigned}
	as[3].Task.Status = swarm.TaskStatus{State: swarm.TaskStateRunning}
	applyTasks(t, []executor.Assignment{as[0], as[1], as[3]})
	waitTask(t, as[1].Task.ID, swarm.TaskStateRunning, 20*time.Second)
	// The cluster hears that the task it thought running died meanwhile.
	if got := waitTask(t, as[3].Task.ID, swarm.TaskStateFailed, 10*time.Second); got.Status.Err != "task: non-zero exit (137)" {
		t.Errorf("task that died while berthd was down: %+v", got.Status)
	}
	time.Sleep(300 * time.Millisecond)
	list := taskContainers(t, svc)
	if len(list) != 3 {
		t.Fatalf("%d task containers after the restart, want 3", len(list))
	}
	for _, c := range list {
		tid := c.Labels[executor.LabelTaskID]
		if tid == as[3].Task.ID {
			if ids[tid] != c.ID || c.State != "exited" {
				t.Errorf("dead task's container: %s %s", c.ID, c.State)
			}
			continue
		}
		if ids[tid] != c.ID || c.State != "running" {
			t.Errorf("task %s: container %s (%s), want the adopted %s", tid, c.ID, c.State, ids[tid])
		}
	}
	if h := executorTasks(t)[as[0].Task.ID].History; len(h) != 0 {
		t.Errorf("a running task adopted after a restart moved: %v", h)
	}

	// It still follows the adopted container: its exit fails the task.
	mustDocker(t, "kill", ids[as[0].Task.ID])
	if got := waitTask(t, as[0].Task.ID, swarm.TaskStateFailed, 10*time.Second); got.Status.ContainerStatus == nil || got.Status.ContainerStatus.ExitCode != 137 {
		t.Errorf("killed adopted task: %+v", got.Status)
	}
}

// TestExecutorConverge10 measures how long Apply takes to get 10 tasks running on this machine (the
// cluster's "20 replicas on 3 nodes converge in < 2 s" needs about 7 per node).
func TestExecutorConverge10(t *testing.T) {
	cleanupTasks(t)
	as := taskSet(uniqueName(t), 10, swarm.ContainerSpec{Image: busybox, Command: []string{"sleep", "1000"}}, nil)
	start := time.Now().UTC()
	applyTasks(t, as)
	var last time.Time
	for _, a := range as {
		got := waitTask(t, a.Task.ID, swarm.TaskStateRunning, 30*time.Second)
		if got.Status.Timestamp.After(last) {
			last = got.Status.Timestamp
		}
	}
	// The tasks' own timestamps: the polling above only adds its own delay.
	t.Logf("10 tasks running %d ms after apply", last.Sub(start).Milliseconds())
	for _, a := range as {
		got := executorTasks(t)[a.Task.ID]
		var b strings.Builder
		for i, s := range got.History {
			fmt.Fprintf(&b, " %s+%d", s, got.Times[i].Sub(start).Milliseconds())
		}
		t.Logf("task %d:%s", a.Task.Slot, b.String())
	}
	applyTasks(t, nil)

	// And the worst case of the cluster's benchmark: all 20 replicas on this one node.
	as = taskSet(uniqueName(t), 20, swarm.ContainerSpec{Image: busybox, Command: []string{"sleep", "1000"}}, nil)
	start = time.Now().UTC()
	applyTasks(t, as)
	last = time.Time{}
	for _, a := range as {
		got := waitTask(t, a.Task.ID, swarm.TaskStateRunning, 60*time.Second)
		if got.Status.Timestamp.After(last) {
			last = got.Status.Timestamp
		}
	}
	t.Logf("20 tasks running %d ms after apply", last.Sub(start).Milliseconds())
}

// TestExecutorPullsMissingImage: a task's image that is not here is pulled through the engine.
func TestExecutorPullsMissingImage(t *testing.T) {
	cleanupTasks(t)
	reg := startDockerRegistry(t, "")
	ref := reg + "/executor-pull:v1"
	mustDocker(t, "tag", busybox, ref)
	mustDocker(t, "push", ref)
	mustDocker(t, "rmi", ref)
	t.Cleanup(func() { rmiQuiet(ref) })
	// Three replicas need it at once: they share one pull.
	as := taskSet(uniqueName(t), 3, swarm.ContainerSpec{Image: ref, Command: []string{"sleep", "1000"}}, nil)
	applyTasks(t, as)
	for _, a := range as {
		waitTask(t, a.Task.ID, swarm.TaskStateRunning, 30*time.Second)
	}
	if r := docker(t, "image", "inspect", ref); r.code != 0 {
		t.Errorf("pulled image not stored: %s", r)
	}
}

// TestExecutorNetworkAndPorts: a task joins the named local network with its aliases, mounts volumes and
// binds, and its host-mode published port answers on this node.
func TestExecutorNetworkAndPorts(t *testing.T) {
	cleanupTasks(t)
	svc := uniqueName(t)
	netName := svc + "-net"
	mustDocker(t, "network", "create", netName)
	t.Cleanup(func() { _ = dockerCmd("network", "rm", netName).Run() })
	vol := svc + "-vol"
	t.Cleanup(func() { _ = dockerCmd("volume", "rm", "-f", vol).Run() })
	dir := t.TempDir()
	writeFileT(t, filepath.Join(dir, "index.html"), "hello from the task\n")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	as := taskSet(svc, 1, swarm.ContainerSpec{Image: busybox,
		Command: []string{"sh", "-c", "echo data > /data/f; exec httpd -f -p 80 -h /www"},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: dir, Target: "/www", ReadOnly: true},
			{Type: mount.TypeVolume, Source: vol, Target: "/data"},
		},
	}, nil)
	as[0].Task.Spec.Networks = []swarm.NetworkAttachmentConfig{{Target: netName, Aliases: []string{"api"}}}
	as[0].Ports = []swarm.PortConfig{
		{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost},
		{Protocol: swarm.PortConfigProtocolUDP, TargetPort: 53, PublishMode: swarm.PortConfigPublishModeHost}, // engine picks the port
		{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 81, PublishedPort: uint32(port + 1), PublishMode: swarm.PortConfigPublishModeIngress},
	}
	applyTasks(t, as)
	running := waitTask(t, as[0].Task.ID, swarm.TaskStateRunning, 20*time.Second)
	// The task's status shows what is published on this node, with the port the engine picked.
	ps := running.Status.PortStatus.Ports
	if len(ps) != 2 || ps[0].TargetPort != 53 || ps[0].Protocol != "udp" || ps[0].PublishedPort == 0 ||
		ps[1].TargetPort != 80 || ps[1].PublishedPort != uint32(port) || ps[1].PublishMode != swarm.PortConfigPublishModeHost {
		t.Errorf("task port status %+v", ps)
	}
	name := fmt.Sprintf("%s.1.%s", svc, as[0].Task.ID)
	ci, err := sdk(t).ContainerInspect(ctxT(t, 10*time.Second), name)
	if err != nil {
		t.Fatal(err)
	}
	ep := ci.NetworkSettings.Networks[netName]
	if ep == nil || !containsStr(ep.Aliases, "api") {
		t.Errorf("task container's networks: %+v", ci.NetworkSettings.Networks)
	}
	if len(ci.HostConfig.PortBindings) != 2 {
		t.Errorf("port bindings %v: only host-mode ports are bound here", ci.HostConfig.PortBindings)
	}
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			body = b.String()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "hello from the task\n" {
		t.Errorf("published port answered %q", body)
	}
	if got := mustDocker(t, "run", "--rm", "-v", vol+":/v", busybox, "cat", "/v/f"); got != "data" {
		t.Errorf("volume holds %q", got)
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeFileT(t *testing.T, p, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

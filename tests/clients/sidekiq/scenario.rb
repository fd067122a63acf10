# Sidekiq acceptance scenario: run unmodified Sidekiq (client API, the `sidekiq` worker executable and the
# Sidekiq::API classes) against the server at REDIS_URL.
#
# Enqueues 100 AddJobs with perform_async and 20 more with push_bulk on a second queue, a SoonJob with
# perform_in(1) and an AddJob with perform_in(3600), and three failing jobs: FlakyJob (fails once, its retry
# succeeds), DoomedJob (fails twice with retry: 1 and lands in the DeadSet) and PatientJob (its retry is due in an
# hour, so it stays in the RetrySet). Then starts the real `sidekiq` executable (-c 5, both queues) as a child
# process, waits (deadline loop) until every job has had its effect, stops the worker with TERM (which flushes its
# stats) and checks Sidekiq::Stats, the Queue, ScheduledSet, RetrySet, DeadSet and ProcessSet APIs and the side
# effects the jobs recorded in Redis. Prints one line `sidekiq: processed=N failed=N ...` and exits non-zero if
# anything is off.

require "rbconfig"
require "sidekiq"
require "sidekiq/api"
require_relative "jobs"

$stdout.sync = true
Sidekiq.logger.level = Logger::WARN

BULK = 20
JOBS = 100 + BULK
DEADLINE = 60 # seconds for the worker to do everything (a few seconds here; retries add up to 9 s of jitter)

def redis(&block)
  Sidekiq.redis(&block)
end

def monotonic
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

# Waits until the block returns true, checking every 50 ms; false once `seconds` have passed.
def wait_until(seconds)
  deadline = monotonic + seconds
  until yield
    return false if monotonic > deadline

    sleep 0.05
  end
  true
end

checks = {}

# --- enqueue, before any worker runs ---
100.times { |i| AddJob.perform_async(i) }
bulk_jids = Sidekiq::Client.push_bulk("class" => AddJob, "queue" => "low", "args" => (100...JOBS).map { |i| [i] })
soon_due = Time.now.to_f + 1
SoonJob.perform_in(1, soon_due)
later_jid = AddJob.perform_in(3600, -1)
FlakyJob.perform_async
DoomedJob.perform_async
patient_jid = PatientJob.perform_async

checks[:enqueued_before] =
  Sidekiq::Queue.new("default").size == 103 && Sidekiq::Queue.new("low").size == BULK &&
  bulk_jids.size == BULK && Sidekiq::Queue.all.map(&:name).sort == %w[default low] &&
  Sidekiq::Stats.new.enqueued == 103 + BULK && Sidekiq::ScheduledSet.new.size == 2

# --- the worker ---
worker = Process.spawn(
  RbConfig.ruby, Gem.bin_path("sidekiq", "sidekiq"),
  "-r", "./jobs.rb", "-c", "5", "-q", "default", "-q", "low", "-t", "5",
  chdir: __dir__, in: File::NULL, out: $stderr, err: $stderr
)

done = lambda do
  redis do |conn|
    conn.hlen("sk:sums") == JOBS && conn.exists?("sk:soon") && conn.exists?("sk:flaky:done") &&
      conn.exists?("sk:doomed:exhausted") && conn.exists?("sk:patient:attempts")
  end && Sidekiq::RetrySet.new.size == 1 && Sidekiq::DeadSet.new.size == 1 &&
    Sidekiq::Stats.new.enqueued.zero? && Sidekiq::Workers.new.size.zero?
end
finished = wait_until(DEADLINE, &done)
checks[:finished] = finished

# While it runs, the worker's heartbeat shows it in the ProcessSet.
processes = Sidekiq::ProcessSet.new.to_a
checks[:process_seen] =
  processes.size == 1 && processes[0]["concurrency"] == 5 && processes[0]["queues"].sort == %w[default low]

# TERM: a clean shutdown, which flushes the worker's processed/failed counters into Redis and clears its heartbeat.
Process.kill("TERM", worker)
exited = wait_until(20) { Process.wait(worker, Process::WNOHANG) }
unless exited
  Process.kill("KILL", worker)
  Process.wait(worker)
end
worker_exit = exited ? $?.exitstatus : "killed"

# --- results ---
sums = redis { |conn| conn.hgetall("sk:sums") }
results_ok = (0...JOBS).count { |i| sums[i.to_s] == (2 * i).to_s }

soon = redis { |conn| conn.hgetall("sk:soon") }
checks[:soon_on_time] = !soon.empty? && soon["ran"].to_f >= soon["due"].to_f && soon["due"].to_f == soon_due

scheduled = Sidekiq::ScheduledSet.new
later = scheduled.find_job(later_jid)
checks[:later_waits] = !later.nil? && later.klass == "AddJob" && later.args == [-1] && later.at > Time.now + 3000

flaky_attempts = redis { |conn| conn.get("sk:flaky:attempts") }.to_i
checks[:flaky_retried] = flaky_attempts == 2 && redis { |conn| conn.get("sk:flaky:done") } == "2"

retries = Sidekiq::RetrySet.new
patient = retries.find_job(patient_jid)
checks[:patient_waits] =
  !patient.nil? && patient["retry_count"] == 0 && patient["error_message"] == "patient attempt" &&
  patient.at > Time.now + 3000 && redis { |conn| conn.get("sk:patient:attempts") } == "1"

dead = Sidekiq::DeadSet.new
doomed = dead.first
checks[:doomed_dead] =
  !doomed.nil? && doomed.klass == "DoomedJob" && doomed["retry_count"] == 1 &&
  doomed["error_message"] == "doomed attempt 2" && doomed["error_class"] == "RuntimeError" &&
  redis { |conn| conn.get("sk:doomed:exhausted") } == "1 doomed attempt 2" &&
  redis { |conn| conn.get("sk:doomed:attempts") } == "2"

stats = Sidekiq::Stats.new
# After the TERM the heartbeat is gone.
processes_after = Sidekiq::ProcessSet.new.size
history = Sidekiq::Stats::History.new(1)
today = Time.now.utc.strftime("%Y-%m-%d")
checks[:history] = history.processed[today] == stats.processed && history.failed[today] == stats.failed

bad = checks.reject { |_name, ok| ok }.keys
puts "sidekiq: processed=#{stats.processed} failed=#{stats.failed} results_ok=#{results_ok} " \
     "enqueued=#{stats.enqueued} scheduled=#{stats.scheduled_size} retry=#{stats.retry_size} " \
     "dead=#{stats.dead_size} flaky_attempts=#{flaky_attempts} processes=#{processes_after} " \
     "worker_exit=#{worker_exit} checks_failed=#{bad.empty? ? "none" : bad.join(",")}"

# 120 AddJobs + the SoonJob + FlakyJob twice + DoomedJob twice + PatientJob once; four of those raised.
good = stats.processed == JOBS + 6 && stats.failed == 4 && results_ok == JOBS && stats.enqueued.zero? &&
  stats.scheduled_size == 1 && stats.retry_size == 1 && stats.dead_size == 1 && processes_after.zero? &&
  worker_exit == 0 && bad.empty?
exit(good ? 0 : 1)

# Sidekiq job classes for the acceptance scenario (scenario.rb). Loaded by the scenario (to enqueue) and by the
# worker (`sidekiq -r ./jobs.rb`). Every job records what it did in Redis under `sk:*`, so the scenario can check the
# side effects as well as Sidekiq's own bookkeeping.

require "sidekiq"

# Debian pairs Sidekiq 6.4.1 with redis-rb 4.8, which warns about every BRPOP Sidekiq makes (positional timeout) and
# every SADD; the warnings would bury the worker's log.
Redis.silence_deprecations = true

Sidekiq.configure_server do |config|
  # Poll the schedule and retry sets every ~0.5 s (0.25..0.75 s) instead of every ~5 s after a 10 s initial wait,
  # so the scheduled job and the retries run within seconds. The first poll still comes 0..5 s after start.
  config.options[:poll_interval_average] = 0.5
end

# 120 of these run: 100 pushed with perform_async to `default`, 20 with push_bulk to `low`; one more is scheduled an
# hour ahead and stays in the ScheduledSet.
class AddJob
  include Sidekiq::Job

  def perform(i)
    Sidekiq.redis { |conn| conn.hset("sk:sums", i.to_s, (i + i).to_s) }
  end
end

# Scheduled with perform_in(1): records when it ran and when it was due.
class SoonJob
  include Sidekiq::Job

  def perform(due)
    Sidekiq.redis { |conn| conn.hset("sk:soon", "due", due.to_s, "ran", Time.now.to_f.to_s) }
  end
end

# Raises on its first attempt; the retry (1 s + Sidekiq's jitter later, moved back by the poller) succeeds.
class FlakyJob
  include Sidekiq::Job
  sidekiq_options retry: 1
  sidekiq_retry_in { |_count, _exception| 1 }

  def perform
    attempt = Sidekiq.redis { |conn| conn.incr("sk:flaky:attempts") }
    raise "flaky attempt #{attempt}" if attempt == 1

    Sidekiq.redis { |conn| conn.set("sk:flaky:done", attempt.to_s) }
  end
end

# Raises on both of its attempts (retry: 1), so it ends in the DeadSet; the retries-exhausted hook records that.
class DoomedJob
  include Sidekiq::Job
  sidekiq_options retry: 1
  sidekiq_retry_in { |_count, _exception| 1 }
  sidekiq_retries_exhausted do |msg, exception|
    Sidekiq.redis { |conn| conn.set("sk:doomed:exhausted", "#{msg["retry_count"]} #{exception.message}") }
  end

  def perform
    attempt = Sidekiq.redis { |conn| conn.incr("sk:doomed:attempts") }
    raise "doomed attempt #{attempt}"
  end
end

# Raises once and is due for its retry an hour later: it stays in the RetrySet.
class PatientJob
  include Sidekiq::Job
  sidekiq_options retry: 1
  sidekiq_retry_in { |_count, _exception| 3600 }

  def perform
    Sidekiq.redis { |conn| conn.incr("sk:patient:attempts") }
    raise "patient attempt"
  end
end

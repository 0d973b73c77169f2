-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "idleDelaySeconds" INTEGER NOT NULL DEFAULT 10,
ADD COLUMN     "onDemand" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "stopReason" TEXT,
ADD COLUMN     "touchDurationSeconds" INTEGER NOT NULL DEFAULT 60,
ADD COLUMN     "touchedAt" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "Schedule" (
    "id" TEXT NOT NULL,
    "virtualLiveId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "at" TIMESTAMP(3),
    "cron" TEXT,
    "timeZone" TEXT,
    "nextRunAt" TIMESTAMP(3),
    "lastRunAt" TIMESTAMP(3),
    "lastResult" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Schedule_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Schedule_nextRunAt_idx" ON "Schedule"("nextRunAt");

-- CreateIndex
CREATE INDEX "Schedule_virtualLiveId_idx" ON "Schedule"("virtualLiveId");

-- AddForeignKey
ALTER TABLE "Schedule" ADD CONSTRAINT "Schedule_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive"("id") ON DELETE CASCADE ON UPDATE CASCADE;

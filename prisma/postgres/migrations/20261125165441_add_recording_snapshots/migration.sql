-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "recordingEnabled" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "recordingRetainHours" DOUBLE PRECISION NOT NULL DEFAULT 24,
ADD COLUMN     "recordingSegmentSeconds" INTEGER NOT NULL DEFAULT 60,
ADD COLUMN     "snapTakenAt" TIMESTAMP(3),
ADD COLUMN     "snapshotEnabled" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "snapshotIntervalSeconds" INTEGER NOT NULL DEFAULT 10;

-- CreateTable
CREATE TABLE "Recording" (
    "id" TEXT NOT NULL,
    "virtualLiveId" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "durationSeconds" DOUBLE PRECISION NOT NULL,
    "sizeBytes" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "Recording_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Recording_path_key" ON "Recording"("path");

-- CreateIndex
CREATE INDEX "Recording_virtualLiveId_startedAt_idx" ON "Recording"("virtualLiveId", "startedAt");

-- CreateIndex
CREATE INDEX "Recording_startedAt_idx" ON "Recording"("startedAt");

-- AddForeignKey
ALTER TABLE "Recording" ADD CONSTRAINT "Recording_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateTable
CREATE TABLE "VodResource" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "container" TEXT NOT NULL,
    "durationSeconds" DOUBLE PRECISION NOT NULL,
    "videoCodec" TEXT,
    "videoProfile" TEXT,
    "width" INTEGER,
    "height" INTEGER,
    "frameRate" DOUBLE PRECISION,
    "videoDurationSeconds" DOUBLE PRECISION,
    "audioCodec" TEXT,
    "audioSampleRate" INTEGER,
    "audioChannels" INTEGER,
    "audioDurationSeconds" DOUBLE PRECISION,
    "copyable" BOOLEAN NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "VodResource_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "VirtualLive" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "sourceType" TEXT NOT NULL,
    "vodResourceId" TEXT,
    "sourceUrl" TEXT,
    "loop" BOOLEAN NOT NULL DEFAULT true,
    "desiredState" TEXT NOT NULL DEFAULT 'STOPPED',
    "status" TEXT NOT NULL DEFAULT 'STOPPED',
    "errorString" TEXT,
    "workerId" TEXT,
    "startedAt" TIMESTAMP(3),
    "stoppedAt" TIMESTAMP(3),
    "connectTimeoutMs" INTEGER NOT NULL DEFAULT 10000,
    "startCount" INTEGER NOT NULL DEFAULT 0,
    "restartCount" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "VirtualLive_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PushTarget" (
    "id" TEXT NOT NULL,
    "virtualLiveId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "url" TEXT NOT NULL,

    CONSTRAINT "PushTarget_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "VirtualLive_desiredState_idx" ON "VirtualLive"("desiredState");

-- CreateIndex
CREATE UNIQUE INDEX "PushTarget_virtualLiveId_position_key" ON "PushTarget"("virtualLiveId", "position");

-- AddForeignKey
ALTER TABLE "VirtualLive" ADD CONSTRAINT "VirtualLive_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PushTarget" ADD CONSTRAINT "PushTarget_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive"("id") ON DELETE CASCADE ON UPDATE CASCADE;
